package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The example server's {@code GET /metrics}: after a few offloaded handshakes it answers in valid Prometheus text
 * format with the documented names, and the counters match the handshakes.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class MetricsEndpointProcessIT {

    private static final Pattern SAMPLE = Pattern.compile(
            "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\]|\\\\.)*\",?)*\\})? "
                    + "(-?[0-9.eE+-]+|NaN|\\+Inf|-Inf)( -?[0-9]+)?$");
    private static final Pattern META = Pattern.compile("^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*$");

    static String get(int port, String path) throws Exception {
        Process c = new ProcessBuilder("curl", "-sS", "-k", "--max-time", "20", "https://127.0.0.1:" + port + path)
                .redirectErrorStream(true).start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        c.getInputStream().transferTo(out);
        assertTrue(c.waitFor(30, TimeUnit.SECONDS));
        return out.toString(StandardCharsets.UTF_8);
    }

    static double value(String metrics, String name, String labelFragment) {
        for (String line : metrics.split("\n")) {
            if (line.startsWith(name + "{") && line.contains(labelFragment)) {
                return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        throw new AssertionError("no sample " + name + " with " + labelFragment + " in:\n" + metrics);
    }

    @Test
    void shouldServePrometheusMetricsWithTheDocumentedNames() throws Exception {
        Process p = ServerJvm.start(List.of("server", "--port", "0", "--mode", "offload", "--workers",
                "1"));
        StringBuilder log = new StringBuilder();
        try {
            int port = ExampleServerProcessIT.awaitPort(p, log);
            for (int i = 0; i < 3; i++) {
                assertTrue(get(port, "/").startsWith("hello from netty-async-ctx"));
            }
            String metrics = get(port, "/metrics");
            for (String line : metrics.split("\n")) {
                if (line.isEmpty()) {
                    continue;
                }
                boolean ok = line.startsWith("#") ? META.matcher(line).matches() : SAMPLE.matcher(line).matches();
                assertTrue(ok, "not Prometheus text format: " + line);
            }
            // The /metrics request itself made a fourth handshake.
            double started = value(metrics, "asyncctx_jobs_started_total", "engine=\"software\"");
            assertTrue(started >= 3 && started <= 4, "jobs started: " + started + "\n" + metrics);
            assertEquals(started, value(metrics, "asyncctx_jobs_finished_total", "engine=\"software\""));
            for (String name : List.of("asyncctx_jobs_paused_total", "asyncctx_jobs_resumed_total",
                    "asyncctx_jobs_failed_total", "asyncctx_eagain_retries_total", "asyncctx_wakeups_spurious_total",
                    "asyncctx_jobs_nojobs_waits_total", "asyncctx_fallbacks_total", "asyncctx_operations_inline_total",
                    "asyncctx_pause_duration_seconds_count", "asyncctx_engine_service_duration_seconds_count",
                    "asyncctx_jobs_inflight", "asyncctx_jobs_waiting", "asyncctx_ctx_live",
                    "asyncctx_waitfds_registered")) {
                Matcher m = Pattern.compile("(?m)^" + name + "\\{").matcher(metrics);
                assertTrue(m.find(), "documented metric " + name + " missing:\n" + metrics);
            }
            assertEquals(0.0, value(metrics, "asyncctx_jobs_failed_total", "cause=\"err\""));
            p.toHandle().destroy();
            assertTrue(p.waitFor(20, TimeUnit.SECONDS));
            assertEquals(0, p.exitValue());
        } finally {
            p.destroyForcibly();
        }
    }
}
