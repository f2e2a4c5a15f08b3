package io.asyncctx.bench.load;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The harnesses' command lines: every option is checked before any work starts (a bad second key type, a rate or
 * an nginx that is not there fail at once, with the option named), and a spawned server's command keeps its quoted
 * arguments.
 */
class HarnessOptionsTest {

    @Test
    void shouldSplitACommandAsAShellSplitsWords() {
        assertEquals(List.of("java", "-jar", "my server.jar", "--name", "a \"b\" c", "x y"),
                HarnessOptions.splitCommand("  java -jar 'my server.jar' --name \"a \\\"b\\\" c\" x\\ y "));
        assertEquals(List.of("a", "", "b"), HarnessOptions.splitCommand("a '' b"));
        assertThrows(IllegalArgumentException.class, () -> HarnessOptions.splitCommand("java 'unterminated"));
        assertThrows(IllegalArgumentException.class, () -> HarnessOptions.splitCommand("trailing \\"));
    }

    @Test
    void shouldParseRatesOnceAndRefuseAPercentageBeforeAnUnlimitedRun() {
        HarnessOptions.RateConverter c = new HarnessOptions.RateConverter();
        assertEquals(250, c.convert("250").resolve(Double.NaN));
        assertEquals(65, c.convert("65%").resolve(100), 1e-9);
        assertTrue(c.convert("0").unlimited());
        assertThrows(CommandLine.TypeConversionException.class, () -> c.convert("-1"));
        assertThrows(CommandLine.TypeConversionException.class, () -> c.convert("fast"));
        String err = run(new LoadHarness(), "--rate", "65%,0", "--modes", "none", "--target", "127.0.0.1:1");
        assertTrue(err.contains("--rate 65%") && err.contains("earlier in the list"), err);
    }

    @Test
    void shouldRefuseABadSecondKeyTypeBeforeAnyRun() {
        String err = run(new H2loadCpuHarness(), "--key-types", "ec,dsa", "--nginx", "none");
        assertTrue(err.contains("--key-types") && err.contains("dsa") && err.contains("rsa"), err);
    }

    @Test
    void shouldRefuseAnNginxThatIsNotExecutableInsteadOfSkippingIt() {
        String err = run(new H2loadCpuHarness(), "--key-types", "ec", "--nginx", "/nonexistent/nginx");
        assertTrue(err.contains("--nginx /nonexistent/nginx") && err.contains("not an executable"), err);
        String err2 = run(new LoadHarness(), "--modes", "none", "--nginx", "/nonexistent/nginx");
        assertTrue(err2.contains("--nginx /nonexistent/nginx") && err2.contains("not an executable"), err2);
    }

    @Test
    void shouldRefuseAnUnknownEngineOrModeAtOnce() {
        String err = run(new LoadHarness(), "--engine", "quantum");
        assertTrue(err.contains("--engine") && err.contains("software") && err.contains("simulated"), err);
        String err2 = run(new H2loadCpuHarness(), "--modes", "inline,warp", "--nginx", "none");
        assertTrue(err2.contains("--modes warp"), err2);
        String err3 = run(new H2loadCpuHarness(), "--workers", "0", "--nginx", "none");
        assertTrue(err3.contains("--workers") && err3.contains("'0'"), err3);
    }

    /** Runs a harness command line that must be refused; returns what it printed on stderr. */
    private static String run(Object command, String... args) {
        StringWriter err = new StringWriter();
        CommandLine cl = HarnessOptions.commandLine(command);
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        assertNotEquals(0, code, () -> "accepted: " + String.join(" ", args) + "\n" + err);
        return err.toString();
    }
}
