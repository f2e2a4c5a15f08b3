package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class DemoSummaryTest {

    private static final DemoCommand.Comparison SIM =
            new DemoCommand.Comparison(2548, 2513, 167, 8_830, 9_630, 12_700);
    private static final DemoCommand.Comparison SW =
            new DemoCommand.Comparison(2543, 2662, 1479, 9_600, 10_100, 7_980);

    @Test
    void shouldNameBothNotificationPathsInTheClosingSentence() {
        String s = DemoCommand.summaryOf(SIM, SW, "simulated 5 ms", 0.5, 1.2, 2);
        s = s.substring(0, s.indexOf(" Where an offload row")); // the p99 explanation: see the next test
        assertEquals("With a 5 ms accelerator, offload completed 15x (wait fd) and 15x (callback) the handshakes/s "
                + "of the blocking server (2548 and 2513 vs 167), with established connections' p99 round trip at "
                + "8.83 ms and 9.63 ms (blocking: 12.7 ms); with the software engine, offload ran at 1.72x (wait fd) "
                + "and 1.80x (callback) stock Netty's (inline) handshakes/s (2543 and 2662 vs 1479), with established "
                + "connections' p99 at 9.60 ms and 10.1 ms (inline: 7.98 ms).", s);
    }

    @Test
    void shouldExplainAWorseEstablishedP99ThatCameWithMoreHandshakesPerSecond() {
        // SW: offload ran 1.72x the handshakes/s with a p99 of 9.60 ms against inline's 7.98 ms.
        String s = DemoCommand.summaryOf(SIM, SW, "simulated 5 ms", 0.5, 1.2, 2);
        assertTrue(s.contains("Where an offload row's established p99 is above its baseline's, it also ran more "
                + "handshakes per second") && s.contains("--rate") && s.contains("--handshake-steps-per-turn"), s);
        // Better p99 everywhere (SIM): nothing to explain.
        assertFalse(DemoCommand.summaryOf(SIM, new DemoCommand.Comparison(2543, 2662, 1479, 7_000, 7_100, 7_980),
                "simulated 5 ms", 0.5, 1.2, 2).contains("Where an offload row"));
        // Worse p99 at a lower rate is not this explanation's case.
        assertFalse(DemoCommand.summaryOf(SIM, new DemoCommand.Comparison(1000, 1000, 1479, 9_600, 9_700, 7_980),
                "simulated 5 ms", 0.5, 1.2, 2).contains("Where an offload row"));
    }

    @Test
    void shouldSayTheFiguresAreNotComparableWhenTheLoadAverageWasAboveTheCoreCount() {
        String busyAfter = DemoCommand.summaryOf(SIM, SW, "simulated 5 ms", 0.5, 4.25, 2);
        assertTrue(busyAfter.endsWith(" The machine was busy (load average 4.25 on 2 cores): other processes "
                + "competed for the cores, so these figures are not comparable with a quiet run; run the demo again "
                + "when the load average is below 2."), busyAfter);
        assertTrue(DemoCommand.summaryOf(SIM, SW, "simulated 5 ms", 3.0, 1.0, 2).contains("load average 3.00"));
        assertFalse(DemoCommand.summaryOf(SIM, SW, "simulated 5 ms", 2.0, Double.NaN, 2).contains("busy"),
                "a load equal to the core count is not above it");
    }

    @Test
    void shouldLeaveOutAComparisonThatMissesAPath() {
        DemoCommand.Comparison noCallback = new DemoCommand.Comparison(2543, Double.NaN, 1479, 1, Double.NaN, 1);
        String s = DemoCommand.summaryOf(SIM, noCallback, "simulated 5 ms", 0, 0, 2);
        assertTrue(s.startsWith("With a 5 ms accelerator") && !s.contains("software engine"), s);
        assertEquals("Nothing to compare: run both offload paths and a baseline.",
                DemoCommand.summaryOf(noCallback, noCallback, "simulated 5 ms", 0, 0, 2));
    }
}
