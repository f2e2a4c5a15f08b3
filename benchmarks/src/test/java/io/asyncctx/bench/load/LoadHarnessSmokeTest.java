package io.asyncctx.bench.load;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class LoadHarnessSmokeTest {

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void shouldWriteCsvWithHandshakesAndChartAgainstInProcessOffloadServer(@TempDir Path out) throws Exception {
        int code = new CommandLine(new LoadHarness()).execute("--in-process", "--modes", "offload-fd", "--key-type",
                "ec", "--duration", "2", "--warmup", "0.5", "--concurrency", "8", "--established", "2", "--out",
                out.toString(), "--name", "smoke");
        assertEquals(0, code, "harness exit code");

        List<String> lines = Files.readAllLines(out.resolve("smoke.csv"));
        assertEquals(2, lines.size(), "header and one row: " + lines);
        List<String> header = List.of(lines.get(0).split(","));
        String[] row = lines.get(1).split(",");
        assertEquals("offload-fd", row[header.indexOf("label")]);
        long handshakes = Long.parseLong(row[header.indexOf("handshakes")]);
        assertTrue(handshakes > 0, "handshakes in the CSV: " + handshakes);
        assertTrue(Long.parseLong(row[header.indexOf("requests")]) > 0, "established requests: " + lines.get(1));

        Path png = out.resolve("smoke.png");
        assertTrue(Files.size(png) > 1000, "chart written: " + png);
        byte[] magic = new byte[4];
        System.arraycopy(Files.readAllBytes(png), 0, magic, 0, 4);
        assertEquals((byte) 0x89, magic[0]);
        assertEquals('P', magic[1]);
    }

    @Test
    @Timeout(value = 90, unit = TimeUnit.SECONDS)
    void shouldRunEachLatencyAndPaceTheStormAtAPercentageOfTheFirstUnlimitedRate(@TempDir Path out) throws Exception {
        int code = new CommandLine(new LoadHarness()).execute("--in-process", "--modes", "offload-fd", "--engine",
                "simulated", "--latency-ms", "1,0", "--rate", "0,50%", "--key-type", "ec", "--duration", "1.5",
                "--warmup", "0.3", "--concurrency", "4", "--established", "1", "--out", out.toString(), "--name",
                "paced");
        assertEquals(0, code, "harness exit code");

        List<String> lines = Files.readAllLines(out.resolve("paced.csv"));
        assertEquals(5, lines.size(), "header and 2 latencies x 2 rates: " + lines);
        List<String> header = List.of(lines.get(0).split(","));
        int label = header.indexOf("label");
        int rate = header.indexOf("rate_target_per_s");
        int hs = header.indexOf("handshakes");
        int seconds = header.indexOf("seconds");
        String[] first = lines.get(1).split(",");
        assertEquals("offload-fd@1ms", first[label]);
        assertEquals("offload-fd@0ms", lines.get(2).split(",")[label]);
        assertEquals(0.0, Double.parseDouble(first[rate]), "the first pass has no limit");
        double firstUnlimited = Long.parseLong(first[hs]) / Double.parseDouble(first[seconds]);
        for (String line : lines.subList(3, 5)) {
            String[] row = line.split(",");
            double target = Double.parseDouble(row[rate]);
            assertEquals(firstUnlimited / 2, target, firstUnlimited / 100 + 0.1, "50% of the first rate: " + line);
            // the label rounds the rate itself, the CSV keeps one decimal: 87.46/s is "87/s" and "87.5" (seen once)
            assertTrue(row[label].matches("offload-fd@\\d+ms \\d+/s"), line);
            double labelled = Double.parseDouble(row[label].substring(row[label].indexOf(' ') + 1,
                    row[label].length() - 2));
            assertEquals(target, labelled, 0.55, "the label's rate: " + line);
            // Slots are 1/rate apart: at most one per slot plus the clients that were already waiting.
            long bound = (long) Math.ceil(target * Double.parseDouble(row[seconds])) + 4 + 1;
            assertTrue(Long.parseLong(row[hs]) <= bound, "paced handshakes " + row[hs] + " <= " + bound + ": "
                    + line);
            assertTrue(Long.parseLong(row[hs]) > 0, "handshakes at the paced rate: " + line);
        }
    }

    @Test
    @Timeout(value = 90, unit = TimeUnit.SECONDS)
    void shouldRunBurstsInAlternatedRoundsAndSummarizeAgainstTheBaseline(@TempDir Path out) throws Exception {
        int code = new CommandLine(new LoadHarness()).execute("--in-process", "--modes",
                "blocking,offload-fd,offload-fd-fair", "--handshake-steps-per-turn", "1", "--engine", "simulated",
                "--latency-ms", "2", "--key-type", "ec", "--concurrency", "0", "--burst", "4",
                "--burst-interval-ms", "200", "--established", "1", "--rounds", "2", "--duration", "1", "--warmup",
                "0.3", "--out", out.toString(), "--name", "burst");
        assertEquals(0, code, "harness exit code");

        List<String> lines = Files.readAllLines(out.resolve("burst.csv"));
        assertEquals(1 + 3 * 2, lines.size(), "header and 3 servers x 2 rounds: " + lines);
        List<String> header = List.of(lines.get(0).split(","));
        int label = header.indexOf("label");
        int round = header.indexOf("round");
        // Rounds rotate the order: blocking first in round 0, offload-fd first in round 1.
        assertEquals(List.of("blocking:0", "offload-fd:0", "offload-fd-fair:0", "offload-fd:1", "offload-fd-fair:1",
                "blocking:1"), lines.subList(1, 7).stream().map(l -> l.split(",")).map(r -> r[label] + ":" + r[round])
                .toList());
        for (String line : lines.subList(1, 7)) {
            String[] row = line.split(",");
            long hs = Long.parseLong(row[header.indexOf("handshakes")]);
            // Bursts of 4 every 200 ms from the start of the warm-up: at most 4 per burst started by the window's end.
            long bound = 4 * ((long) Math.floor((0.3 + Double.parseDouble(row[header.indexOf("seconds")])) / 0.2) + 1);
            assertTrue(hs > 0 && hs <= bound, "burst handshakes 0 < " + hs + " <= " + bound + ": " + line);
            assertEquals(0, Long.parseLong(row[header.indexOf("concurrency")]), line);
            assertTrue(Long.parseLong(row[header.indexOf("requests")]) > 0, "established requests: " + line);
        }

        List<String> summary = Files.readAllLines(out.resolve("burst-summary.csv"));
        assertEquals(4, summary.size(), "header and one row per server: " + summary);
        List<String> sh = List.of(summary.get(0).split(","));
        String[] blocking = summary.get(1).split(",");
        assertEquals("blocking", blocking[sh.indexOf("label")]);
        assertEquals("2", blocking[sh.indexOf("rounds")]);
        assertEquals(1.0, Double.parseDouble(blocking[sh.indexOf("p99_vs_baseline_paired_median")]), 1e-9);
        assertEquals(1.0, Double.parseDouble(blocking[sh.indexOf("handshakes_per_s_vs_baseline_paired_median")]),
                1e-9, "the baseline against itself");
        String[] fd = summary.get(2).split(",");
        assertEquals("offload-fd", fd[sh.indexOf("label")]);
        assertTrue(Double.parseDouble(fd[sh.indexOf("p99_vs_baseline_paired_median")]) > 0, summary.get(2));
        assertTrue(Double.parseDouble(fd[sh.indexOf("handshakes_per_s_median")]) > 0, summary.get(2));
        double q1 = Double.parseDouble(fd[sh.indexOf("handshakes_per_s_vs_baseline_paired_p25")]);
        double med = Double.parseDouble(fd[sh.indexOf("handshakes_per_s_vs_baseline_paired_median")]);
        double q3 = Double.parseDouble(fd[sh.indexOf("handshakes_per_s_vs_baseline_paired_p75")]);
        assertTrue(0 < q1 && q1 <= med && med <= q3, "paired handshakes/s quartiles: " + summary.get(2));
        String[] fair = summary.get(3).split(",");
        assertEquals("offload-fd-fair", fair[sh.indexOf("label")]);
        assertTrue(Double.parseDouble(fair[sh.indexOf("handshakes_per_s_median")]) > 0, summary.get(3));
    }
}
