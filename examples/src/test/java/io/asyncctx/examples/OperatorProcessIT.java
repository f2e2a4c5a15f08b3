package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Issue 21: the example server as an operator leaves it running, checked from outside with real clients. Graceful
 * shutdown under h2load (h2 and HTTP/1.1, handshakes paused on a slow simulated engine): every request the server
 * received is answered; a second SIGTERM or the grace period's end stops at once. Idle connections are closed after
 * the idle timeout. HEAD works over h2 and h1. 500 failed handshakes of four kinds give far fewer than 500 log lines,
 * no stack trace, and the counts by reason in /metrics. {@code --ciphers} without TLS 1.3 suites keeps TLS 1.3.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class OperatorProcessIT {

    @TempDir
    static Path pki;

    private static final Pattern DRAINED = Pattern.compile(
            "(\\d+) requests received, (\\d+) answered, (\\d+) unanswered");
    private static final Pattern H2LOAD = Pattern.compile(
            "requests: (\\d+) total, (\\d+) started, (\\d+) done, (\\d+) succeeded, (\\d+) failed, (\\d+) errored, "
                    + "(\\d+) timeout");
    private static final Pattern STATUS = Pattern.compile("status codes: (\\d+) 2xx");

    @BeforeAll
    static void makeCa() throws Exception {
        TicketFlushProcessIT.run(List.of("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", pki.resolve("ca.key").toString(), "-out",
                pki.resolve("ca.pem").toString(), "-days", "2", "-subj", "/CN=ca"));
        TicketFlushProcessIT.run(List.of("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", pki.resolve("alice.key").toString(), "-out", pki.resolve("alice.csr").toString(),
                "-subj", "/O=Example/CN=alice"));
        TicketFlushProcessIT.run(List.of("openssl", "x509", "-req", "-in", pki.resolve("alice.csr").toString(), "-CA",
                pki.resolve("ca.pem").toString(), "-CAkey", pki.resolve("ca.key").toString(), "-CAcreateserial",
                "-out", pki.resolve("alice.pem").toString(), "-days", "2"));
    }

    /** A running server with its output collected on a thread of its own. */
    static final class Server implements AutoCloseable {
        final Process process;
        final int port;
        final StringBuffer out = new StringBuffer();
        private final CompletableFuture<Void> reader;

        Server(List<String> flags) throws Exception {
            List<String> args = new ArrayList<>(List.of("server", "--port", "0"));
            args.addAll(flags);
            process = ServerJvm.start(args);
            StringBuilder head = new StringBuilder();
            try {
                port = ExampleServerProcessIT.awaitPort(process, head);
            } catch (Throwable t) {
                process.destroyForcibly();
                throw t;
            }
            out.append(head);
            BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(),
                    StandardCharsets.UTF_8));
            reader = CompletableFuture.runAsync(() -> {
                try {
                    for (String line; (line = r.readLine()) != null; ) {
                        out.append(line).append('\n');
                    }
                } catch (java.io.IOException e) {
                    // process gone
                }
            }, ServerJvm.OWN_THREAD);
        }

        String url() {
            return "https://127.0.0.1:" + port + "/";
        }

        void signal() {
            process.toHandle().destroy(); // SIGTERM
        }

        /** Waits for the exit and for the whole output; the output. */
        String awaitExit(long seconds) throws Exception {
            assertTrue(process.waitFor(seconds, TimeUnit.SECONDS), "server still running after " + seconds
                    + " s:\n" + out);
            reader.get(10, TimeUnit.SECONDS);
            return out.toString();
        }

        private java.net.http.HttpClient scraper;

        /**
         * One metric's value from /metrics, 0 when absent. Asked over one kept HTTP/2 connection (the JDK's client),
         * so that a scrape costs no handshake of its own; every scrape is one request the server counts.
         */
        double metric(String name) throws Exception {
            if (scraper == null) {
                scraper = java.net.http.HttpClient.newBuilder().version(java.net.http.HttpClient.Version.HTTP_2)
                        .sslContext(trustAll()).build();
            }
            String text = scraper.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(url() + "metrics"))
                    .timeout(java.time.Duration.ofSeconds(20)).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString()).body();
            Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + " ([0-9.eE+]+)$").matcher(text);
            return m.find() ? Double.parseDouble(m.group(1)) : 0;
        }

        @Override
        public void close() {
            process.destroyForcibly();
        }
    }

    @ParameterizedTest(name = "{0}, signal when {1}")
    @CsvSource({
        "h2, handshakes paused",
        "h2, requests flowing",
        "http/1.1, handshakes paused",
        "http/1.1, requests flowing"
    })
    void shouldAnswerEveryRequestReceivedWhenDrainingOnSigterm(String protocol, String when) throws Exception {
        try (Server s = new Server(List.of("--engine", "simulated", "--latency-ms", "500", "--shutdown-grace",
                "30"))) {
            String inflight = "asyncctx_jobs_inflight{loop=\"" + loopName(s) + "\"}";
            int scrapes = 1; // loopName's
            s.metric(inflight); // the scraper's connection and handshake, before the load
            scrapes++;
            List<String> cmd = new ArrayList<>(List.of("h2load", "-n", "1000000", "-c", "20", "-m",
                    protocol.equals("h2") ? "10" : "1"));
            if (!protocol.equals("h2")) {
                cmd.add("--h1");
            }
            cmd.add(s.url());
            Process load = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            CompletableFuture<String> loadOut = CompletableFuture.supplyAsync(() -> {
                try {
                    return new String(load.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }, ServerJvm.OWN_THREAD);
            try {
                if (when.startsWith("handshakes")) {
                    // signal while h2load's handshakes wait in the engine (500 ms each)
                    do {
                        scrapes++;
                    } while (s.metric(inflight) < 5);
                } else {
                    do {
                        scrapes++;
                    } while (s.metric("server_requests_answered_total") < 500);
                }
                s.signal();
                String out = s.awaitExit(60);
                assertEquals(0, s.process.exitValue(), out);
                String h2load = loadOut.get(60, TimeUnit.SECONDS);
                Matcher d = DRAINED.matcher(out);
                assertTrue(d.find(), out);
                long received = Long.parseLong(d.group(1));
                assertEquals(0, Long.parseLong(d.group(3)), "requests left unanswered:\n" + out);
                Matcher h = H2LOAD.matcher(h2load);
                Matcher st = STATUS.matcher(h2load);
                assertTrue(h.find() && st.find(), h2load);
                long ok = Long.parseLong(st.group(1));
                assertTrue(ok > 0, "h2load got no response at all:\n" + h2load);
                // every request the server received (h2load's and our scrapes) reached its client as a 2xx
                assertEquals(received, ok + scrapes, "server:\n" + out + "\nh2load:\n" + h2load);
                assertEquals(h.group(2), h.group(3), "requests started but never done:\n" + h2load);
                assertEquals("0", h.group(7), h2load);
                assertTrue(out.contains("all finished"), out);
            } finally {
                load.destroyForcibly();
            }
        }
    }

    /** The event loop's thread name as the metrics tag it (one loop: --threads 1). */
    private static String loopName(Server s) throws Exception {
        String text = run(List.of("curl", "-sSk", "--max-time", "20", s.url() + "metrics"));
        Matcher m = Pattern.compile("asyncctx_jobs_inflight\\{loop=\"([^\"]+)\"").matcher(text);
        assertTrue(m.find(), text);
        return m.group(1);
    }

    @Test
    void shouldStopAtOnceOnASecondSigtermAndAtTheEndOfTheGracePeriod() throws Exception {
        byte[] hello = BadInputProcessIT.clientHello();
        // Two servers, each with a handshake in flight: the first (grace 120 s) still runs 2 s after it stopped
        // accepting, then stops at once on a second SIGTERM; the second (grace 2 s) stops at the end of its grace.
        // The second's grace runs during the first's 2 s.
        try (Server once = new Server(List.of("--shutdown-grace", "120", "--handshake-timeout", "120"));
             Server graced = new Server(List.of("--shutdown-grace", "2", "--handshake-timeout", "120"));
             Socket stalledOnce = stall(once, hello);
             Socket stalledGraced = stall(graced, hello)) {
            once.signal();
            awaitRefused(once.port); // stopped accepting
            long refused = System.nanoTime();

            long start = System.nanoTime();
            graced.signal();
            String out = graced.awaitExit(30);
            assertEquals(0, graced.process.exitValue(), out);
            assertTrue(out.contains("1 connections cut at the end of the grace period"), out);
            assertTrue(System.nanoTime() - start >= TimeUnit.MILLISECONDS.toNanos(1900), "left before the grace end");

            long left = TimeUnit.SECONDS.toNanos(2) - (System.nanoTime() - refused);
            assertFalse(once.process.waitFor(Math.max(0, left), TimeUnit.NANOSECONDS),
                    "exited with a handshake in flight:\n" + once.out);
            once.signal();
            out = once.awaitExit(20);
            assertEquals(0, once.process.exitValue(), out);
            assertTrue(out.contains("stopping at once"), out);
        }
    }

    /** A connection to {@code s} with half a ClientHello sent (a handshake in flight), once the server counts it. */
    private static Socket stall(Server s, byte[] hello) throws Exception {
        Socket stalled = new Socket();
        try {
            stalled.connect(new InetSocketAddress("127.0.0.1", s.port), 10_000);
            stalled.getOutputStream().write(Arrays.copyOf(hello, hello.length / 2));
            stalled.getOutputStream().flush();
            awaitOpenConnections(s, 2); // the stalled one and the scrape's own
            return stalled;
        } catch (Throwable t) {
            stalled.close();
            throw t;
        }
    }

    private static void awaitOpenConnections(Server s, int n) throws Exception {
        io.asyncctx.testkit.Await.until(n + " open connections", java.time.Duration.ofSeconds(30), () -> {
            try {
                return s.metric("server_connections_open") >= n;
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
    }

    /**
     * Waits until the port no longer takes connections: refused, or reset (a probe that reached the backlog just as
     * the listener closed is reset, not refused).
     */
    private static void awaitRefused(int port) throws Exception {
        io.asyncctx.testkit.Await.until("the listener to close", java.time.Duration.ofSeconds(30), () -> {
            try (Socket probe = new Socket()) {
                probe.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
                return false;
            } catch (java.net.SocketException e) {
                return true; // refused (ConnectException) or reset
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"h2", "http/1.1"})
    void shouldCloseAnIdleConnectionAfterTheIdleTimeout(String alpn) throws Exception {
        try (Server s = new Server(List.of("--idle-timeout", "1"))) {
            // s_client keeps stdin open and sends nothing after the handshake: only the server can end it
            Process idle = new ProcessBuilder("openssl", "s_client", "-connect", "127.0.0.1:" + s.port, "-alpn",
                    alpn).redirectErrorStream(true).start();
            try {
                long start = System.nanoTime();
                assertTrue(idle.waitFor(30, TimeUnit.SECONDS), "the idle connection stayed open");
                assertTrue(System.nanoTime() - start >= TimeUnit.MILLISECONDS.toNanos(750), "closed too early");
                String out = new String(idle.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                assertTrue(out.contains("ALPN protocol: " + alpn), out);
            } finally {
                idle.destroyForcibly();
            }
            s.signal();
            assertEquals(0, s.process.waitFor(20, TimeUnit.SECONDS) ? s.process.exitValue() : -1, s.out.toString());
        }
    }

    @Test
    void shouldCloseAStalledHandshakeAfterTheHandshakeTimeoutFlag() throws Exception {
        try (Server s = new Server(List.of("--handshake-timeout", "1"));
             Socket stalled = new Socket()) {
            long start = System.nanoTime(); // before the connect: the server's timer cannot start earlier
            stalled.connect(new InetSocketAddress("127.0.0.1", s.port), 10_000);
            stalled.setSoTimeout(30_000);
            stalled.getOutputStream().write(new byte[] {0x16, 0x03, 0x01, 0x02, 0x00, 0x01}); // a record, cut short
            assertEquals(-1, stalled.getInputStream().read(), "the server sent something instead of closing");
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertTrue(ms >= 750 && ms < 9000, "closed after " + ms + " ms; --handshake-timeout 1 (Netty's own: 10 s)");
            assertEquals(1, s.metric("server_handshakes_failed_total{reason=\"timeout\"}"), s.out.toString());
        }
    }

    @Test
    void shouldAnswerHeadWithoutABodyOverHttp2AndHttp11() throws Exception {
        try (Server s = new Server(List.of())) {
            String h2 = run(List.of("curl", "-sSkI", "--max-time", "20", s.url()));
            assertEquals(0, lastExit, h2);
            assertTrue(h2.startsWith("HTTP/2 200"), h2);
            assertTrue(h2.contains("content-length: "), h2);
            String h1 = run(List.of("curl", "-sSkI", "--http1.1", "--max-time", "20", s.url()));
            assertEquals(0, lastExit, h1);
            assertTrue(h1.startsWith("HTTP/1.1 200"), h1);
            // the HEADERS frame ends the stream (flags 0x05: END_STREAM | END_HEADERS), no DATA frame follows
            String frames = run(List.of("nghttp", "-v", "-H", ":method: HEAD", s.url()));
            assertTrue(frames.contains("recv HEADERS frame <length=") && frames.contains("flags=0x05"), frames);
            assertFalse(frames.contains("recv DATA frame"), frames);
            String post = run(List.of("curl", "-sSk", "-i", "-X", "POST", "--max-time", "20", s.url()));
            assertTrue(post.startsWith("HTTP/2 405") && post.contains("allow: GET, HEAD"), post);
        }
    }

    @Test
    void shouldLogFailedHandshakesInFewLinesAndCountThemByReason() throws Exception {
        String ca = pki.resolve("ca.pem").toString();
        try (Server s = new Server(List.of("--client-ca", ca))) {
            String host = "127.0.0.1:" + s.port;
            List<List<String>> kinds = List.of(
                    List.of("openssl", "s_client", "-connect", host, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"),
                    List.of("openssl", "s_client", "-connect", host, "-tls1_2", "-cipher", "AES128-SHA"),
                    List.of("curl", "-s", "--max-time", "20", "http://" + host + "/"),
                    List.of("openssl", "s_client", "-connect", host, "-tls1_3")); // no client certificate
            ExecutorService pool = Executors.newFixedThreadPool(8);
            try {
                List<Future<String>> runs = new ArrayList<>();
                for (int i = 0; i < 500; i++) {
                    List<String> cmd = kinds.get(i % 4);
                    runs.add(pool.submit(() -> runWithInput(cmd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
                }
                for (Future<String> f : runs) {
                    f.get(120, TimeUnit.SECONDS);
                }
            } finally {
                pool.shutdownNow();
            }
            String metrics = run(List.of("curl", "-sSk", "--max-time", "20", "--cert",
                    pki.resolve("alice.pem").toString(), "--key", pki.resolve("alice.key").toString(),
                    s.url() + "metrics"));
            for (String reason : List.of("protocol_version", "no_shared_cipher", "not_tls", "certificate_required")) {
                assertTrue(metrics.contains("server_handshakes_failed_total{reason=\"" + reason + "\"} 125.0"),
                        reason + "\n" + metrics + "\n" + s.out);
            }
            s.signal();
            String out = s.awaitExit(30);
            assertEquals(0, s.process.exitValue(), out);
            List<String> lines = out.lines().toList();
            long failureLines = lines.stream().filter(l -> l.contains("handshake failed")).count();
            // at most 20 lines per 10 s and a summary: far below one line per failure however long the run took
            assertTrue(failureLines >= 20 && failureLines <= 250, failureLines + " lines:\n" + out);
            assertTrue(lines.size() <= 260, lines.size() + " lines in all:\n" + out);
            assertTrue(lines.stream().noneMatch(l -> l.startsWith("\tat ") || l.startsWith("Caused by")), out);
            assertTrue(out.contains("more not logged in the last 10 s"), out);
        }
    }

    @Test
    void shouldKeepTls13WhenCiphersNameOnlyTls12Suites() throws Exception {
        try (Server s = new Server(List.of("--ciphers", "ECDHE-RSA-AES128-GCM-SHA256"))) {
            while (!s.out.toString().contains("cipher suites")) { // the start-up line after "listening on"
                assertTrue(s.process.isAlive(), s.out.toString());
                Thread.onSpinWait();
            }
            assertTrue(s.out.toString().contains("4 cipher suites (3 TLS 1.3)"), s.out.toString());
            String tls13 = runWithInput(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + s.port, "-tls1_3"),
                    "");
            assertTrue(tls13.contains("New, TLSv1.3"), tls13);
            String narrowed = runWithInput(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + s.port,
                    "-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"), "");
            assertTrue(narrowed.contains("alert handshake failure"), narrowed);
        }
        try (Server s = new Server(List.of("--ciphers", "ECDHE-RSA-AES128-GCM-SHA256", "--tls-versions",
                "TLSv1.2"))) {
            String tls13 = runWithInput(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + s.port, "-tls1_3"),
                    "");
            assertTrue(tls13.contains("alert protocol version"), tls13);
        }
    }

    static javax.net.ssl.SSLContext trustAll() throws Exception {
        javax.net.ssl.SSLContext ctx = javax.net.ssl.SSLContext.getInstance("TLS");
        ctx.init(null, new javax.net.ssl.TrustManager[] {new javax.net.ssl.X509TrustManager() {
            @Override
            public void checkClientTrusted(java.security.cert.X509Certificate[] chain, String authType) {
            }

            @Override
            public void checkServerTrusted(java.security.cert.X509Certificate[] chain, String authType) {
            }

            @Override
            public java.security.cert.X509Certificate[] getAcceptedIssuers() {
                return new java.security.cert.X509Certificate[0];
            }
        }}, null);
        return ctx;
    }

    private static volatile int lastExit;

    static String run(List<String> cmd) throws Exception {
        return runWithInput(cmd, null);
    }

    static String runWithInput(List<String> cmd, String input) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            try (java.io.OutputStream stdin = p.getOutputStream()) {
                if (input != null) {
                    stdin.write(input.getBytes(StandardCharsets.US_ASCII));
                }
            } catch (java.io.IOException brokenPipe) {
                // it ended before reading its input (a refused handshake; curl reads none): its output is the result
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            p.getInputStream().transferTo(out);
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "timed out: " + cmd);
            lastExit = p.exitValue();
            return out.toString(StandardCharsets.UTF_8);
        } finally {
            p.destroyForcibly();
        }
    }
}
