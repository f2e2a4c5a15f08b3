package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A browser this project did not write, over HTTP/3: the example server started with {@code --http3} as a process,
 * headless Chromium (Debian {@code chromium}, installed by {@code .ci/run}) forced onto QUIC for the server's origin
 * fetches {@code GET /}, whose body says the connection's key operation was offloaded; the server's {@code /metrics}
 * then counts the QUIC job ({@code protocol="quic"}), and its HTTP/1.1 responses carry {@code Alt-Svc}. With
 * {@code --inline-below-us} the QUIC handshake of a P-256 key is signed inline instead, and counted as such.
 */
@Timeout(value = 150, unit = TimeUnit.SECONDS)
class Http3ChromiumProcessIT {

    @TempDir
    Path dir;

    static String run(List<String> cmd, long seconds) throws Exception {
        Process c = new ProcessBuilder(cmd).redirectErrorStream(false).start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Thread errDrain = new Thread(() -> {
            try {
                c.getErrorStream().transferTo(java.io.OutputStream.nullOutputStream());
            } catch (java.io.IOException ignored) {
                // the process ended
            }
        });
        errDrain.start();
        c.getInputStream().transferTo(out);
        assertTrue(c.waitFor(seconds, TimeUnit.SECONDS), "did not end: " + cmd);
        errDrain.join(5_000);
        return out.toString(StandardCharsets.UTF_8);
    }

    static String sh(String script) throws Exception {
        return run(List.of("sh", "-c", script), 60).trim();
    }

    @ParameterizedTest(name = "{0} {1} {2} {3}")
    @CsvSource({
        "epoll, fd, rsa, software",
        "epoll, fd, ec, simulated",
        "epoll, callback, rsa, simulated",
        "epoll, callback, ec, software",
        "nio, callback, rsa, software",
        "nio, callback, ec, simulated",
        "io_uring, fd, ec, software"
    })
    void shouldServeChromiumOverHttp3WithTheKeyOperationOffloaded(String transport, String notify, String key,
                                                                  String engine) throws Exception {
        List<String> args = new ArrayList<>(List.of("--transport", transport, "--notify", notify, "--engine", engine));
        if (engine.equals("simulated")) {
            args.addAll(List.of("--latency-ms", "20"));
        }
        String[] pageAndMetrics = fetchWithChromium(key, args);
        String page = pageAndMetrics[0];
        String metrics = pageAndMetrics[1];
        assertTrue(page.contains("key operation offloaded: yes"), "Chromium's page: " + page);
        double quicJobs = counter(metrics, "asyncctx_jobs_finished_total", "protocol=\"quic\"");
        assertTrue(quicJobs >= 1, "QUIC jobs finished: " + quicJobs + "\n" + metrics);
        assertEquals(quicJobs, counter(metrics, "asyncctx_jobs_started_total", "protocol=\"quic\""));
    }

    /**
     * {@code --inline-below-us} reaches the HTTP/3 listener: with a P-256 key and a threshold far above a P-256
     * signature (5 ms), Chromium's QUIC handshake is signed inline on the event loop and counted as such.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"epoll", "nio"})
    void shouldSignChromiumsQuicHandshakeInlineWithInlineBelowUs(String transport) throws Exception {
        String[] pageAndMetrics = fetchWithChromium("ec", List.of("--transport", transport, "--engine", "software",
                "--inline-below-us", "5000"));
        String page = pageAndMetrics[0];
        String metrics = pageAndMetrics[1];
        assertTrue(page.contains("key operation offloaded: no (signed inline on the event loop)"),
                "Chromium's page: " + page);
        double inline = counter(metrics, "asyncctx_operations_inline_total", "protocol=\"quic\"");
        assertTrue(inline >= 1, "QUIC operations signed inline: " + inline + "\n" + metrics);
        assertEquals(0, counter(metrics, "asyncctx_jobs_started_total", "protocol=\"quic\""), metrics);
    }

    /**
     * Starts the example server with {@code --http3}, a fresh certificate of {@code key} and {@code extraArgs}, checks
     * the HTTP/1.1 Alt-Svc, fetches {@code GET /} with Chromium over HTTP/3 and then {@code /metrics}; returns both
     * bodies, and checks that the server exits 0 on SIGTERM.
     */
    private String[] fetchWithChromium(String key, List<String> extraArgs) throws Exception {
        String newKey = key.equals("rsa") ? "rsa:2048" : "ec -pkeyopt ec_paramgen_curve:P-256";
        sh("cd " + dir + " && openssl req -x509 -newkey " + newKey + " -nodes -keyout key.pem -out cert.pem -days 2 "
                + "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null");
        String spki = spki(dir.resolve("cert.pem"));
        List<String> args = new ArrayList<>(List.of("server", "--port", "0", "--http3", "--cert",
                dir.resolve("cert.pem").toString(), "--key", dir.resolve("key.pem").toString()));
        args.addAll(extraArgs);
        Process server = ServerJvm.start(args);
        StringBuilder log = new StringBuilder();
        String page;
        String metrics;
        Thread[] drainRef = new Thread[1];
        try {
            int port = ExampleServerProcessIT.awaitPort(server, log);
            Thread drain = new Thread(() -> {
                try (java.io.BufferedReader r = new java.io.BufferedReader(new java.io.InputStreamReader(
                        server.getInputStream(), java.nio.charset.StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null; ) {
                        synchronized (log) {
                            log.append(line).append('\n');
                        }
                    }
                } catch (java.io.IOException ignored) {
                    // the server ended
                }
            });
            drain.setDaemon(true);
            drain.start();
            drainRef[0] = drain;

            String h1 = run(List.of("curl", "-sS", "-k", "-D", "-", "--max-time", "20",
                    "https://127.0.0.1:" + port + "/"), 30);
            assertTrue(h1.toLowerCase(java.util.Locale.ROOT).contains("alt-svc: h3=\":" + port + "\""), h1);

            page = chromium(Files.createDirectory(dir.resolve("chromium-profile")), port, spki);
            assertTrue(page.contains("over HTTP/3 (QUIC) TLS_"), "Chromium's page: " + page);

            metrics = run(List.of("curl", "-sS", "-k", "--max-time", "20",
                    "https://127.0.0.1:" + port + "/metrics"), 30);
        } finally {
            server.destroy();
            assertTrue(server.waitFor(20, TimeUnit.SECONDS), "server did not stop:\n" + log);
        }
        assertEquals(0, server.exitValue(), "exit code after SIGTERM:\n" + log);
        if (drainRef[0] != null) {
            drainRef[0].join(10_000); // the server has exited: its output ends
        }
        synchronized (log) {
            // One set of per-loop gauges for TCP and QUIC: Micrometer logs a second registration as if it were a fault.
            assertFalse(log.toString().contains("already registered"), "the server's log:\n" + log);
        }
        return new String[] {page, metrics};
    }

    /**
     * Headless Chromium's page for {@code https://localhost:PORT/}, over HTTP/3 (QUIC forced for that origin), trusting
     * the certificate whose SPKI SHA-256 (base64) is {@code spki}.
     */
    static String chromium(Path profile, int port, String spki) throws Exception {
        return run(List.of("chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                "--user-data-dir=" + profile, "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--origin-to-force-quic-on=localhost:" + port,
                "--ignore-certificate-errors-spki-list=" + spki,
                "--host-resolver-rules=MAP localhost 127.0.0.1", "--dump-dom", "https://localhost:" + port + "/"),
                90);
    }

    /** The base64 SHA-256 of the SPKI of the certificate in {@code certPem}, as Chromium's flag wants it. */
    static String spki(Path certPem) throws Exception {
        String spki = sh("openssl x509 -in " + certPem + " -pubkey -noout | openssl pkey -pubin "
                + "-outform der | openssl dgst -sha256 -binary | base64");
        assertEquals(44, spki.length(), "SPKI hash: " + spki);
        return spki;
    }

    /** The sum of a Prometheus counter's samples whose labels contain {@code label}. */
    static double counter(String metrics, String name, String label) {
        double sum = 0;
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + "\\{([^}]*)\\} (\\S+)$").matcher(metrics);
        while (m.find()) {
            if (m.group(1).contains(label)) {
                sum += Double.parseDouble(m.group(2));
            }
        }
        return sum;
    }
}
