package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The example server against clients nobody here wrote: curl over HTTP/2 and HTTP/1.1, h2load over h2, the JDK's
 * HttpClient asking for HTTP/2, gnutls-cli; mutual TLS with {@code openssl s_client -cert/-key}; the TLS 1.2 suites
 * nginx accepts; Ed25519 certificates in every mode.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ProtocolsProcessIT {

    @TempDir
    static Path pki;

    @BeforeAll
    static void makeCertificates() throws Exception {
        // Two CAs; alice's certificate is issued by the first, mallory's by the second.
        for (String ca : List.of("ca", "other-ca")) {
            ok(run(List.of("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", file(ca + ".key"), "-out", file(ca + ".pem"), "-days", "2",
                    "-subj", "/CN=" + ca)));
        }
        for (String[] c : new String[][] {{"alice", "ca"}, {"mallory", "other-ca"}}) {
            ok(run(List.of("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", file(c[0] + ".key"), "-out", file(c[0] + ".csr"), "-subj", "/O=Example/CN=" + c[0])));
            ok(run(List.of("openssl", "x509", "-req", "-in", file(c[0] + ".csr"), "-CA", file(c[1] + ".pem"),
                    "-CAkey", file(c[1] + ".key"), "-CAcreateserial", "-out", file(c[0] + ".pem"), "-days", "2")));
        }
    }

    @Test
    void shouldServeHttp2AndHttp11ByAlpnToCurlH2loadJavaAndGnutls() throws Exception {
        try (Server s = Server.start(List.of())) {
            String h2 = ok(run(List.of("curl", "-sS", "-k", "--http2", "--max-time", "20", s.url())));
            assertTrue(h2.startsWith("hello from netty-async-ctx over TLSv1.3") && h2.contains(", HTTP/2, "), h2);
            String h1 = ok(run(List.of("curl", "-sS", "-k", "--http1.1", "--max-time", "20", s.url())));
            assertTrue(h1.contains(", HTTP/1.1, "), h1);

            String load = ok(run(List.of("h2load", "-n", "40", "-c", "4", "-m", "4", s.url())));
            assertTrue(load.contains("Application protocol: h2"), load);
            assertTrue(load.contains("40 succeeded, 0 failed"), load);

            // No sslParameters(): custom parameters would replace the client's ALPN list and it would fall back to
            // HTTP/1.1. The generated certificate names 127.0.0.1, so the host check passes.
            HttpClient java = HttpClient.newBuilder().version(HttpClient.Version.HTTP_2).sslContext(trustAll())
                    .build();
            HttpResponse<String> res = java.send(HttpRequest.newBuilder(URI.create(s.url())).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(HttpClient.Version.HTTP_2, res.version());
            assertTrue(res.body().contains(", HTTP/2, "), res.body());

            String gnutls = run(List.of("gnutls-cli", "--insecure", "--alpn=h2", "--port", String.valueOf(s.port),
                    "127.0.0.1"));
            assertTrue(gnutls.contains("Handshake was completed"), gnutls);
            assertTrue(gnutls.contains("ALPN: h2") || gnutls.contains("Application protocol: h2"), gnutls);

            // gnutls-cli saves the session right after the handshake, before any request: it resumes only because
            // the TLS 1.3 tickets go out with the handshake (SessionTicketFlusher), not with the first response.
            // --waitresumption: it waits for them (by default only its round-trip estimate + 60 ms, which a busy
            // 2-core machine can miss); timeout 30: tickets that never come fail the check then.
            String resume = run(List.of("timeout", "30", "gnutls-cli", "--insecure", "--resume", "--waitresumption",
                    "--port", String.valueOf(s.port), "127.0.0.1"));
            assertTrue(resume.contains("This is a resumed session"), resume);
        }
    }

    @Test
    void shouldShowBoringSslsClientHelloLimitAndWhenItRises() throws Exception {
        // 70 ALPN names of 244 bytes: a ClientHello of about 17 KB. BoringSSL accepts at most 16 KB for a handshake
        // message unless the server verifies client certificates (then the certificate-list limit applies).
        StringBuilder alpn = new StringBuilder();
        for (int i = 0; i < 70; i++) {
            alpn.append(String.format("p%03d", i)).append("x".repeat(240)).append(',');
        }
        alpn.append("h2");
        try (Server s = Server.start(List.of())) {
            String out = sClient(s, List.of("-alpn", alpn.toString()));
            assertTrue(out.contains("alert illegal parameter"), out);
        }
        try (Server s = Server.start(List.of("--client-ca", file("ca.pem"), "--client-auth", "optional"))) {
            String out = sClient(s, List.of("-alpn", alpn.toString()));
            assertTrue(out.contains("ALPN protocol: h2") && out.contains("Cipher is TLS_"), out);
        }
    }

    /** {@code -V} prints the versions at the top level and for each subcommand (picocli asks each its own provider). */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"-V", "server -V", "demo -V", "demo --version"})
    void shouldPrintVersions(String args) throws Exception {
        Process p = ServerJvm.start(List.of(args.split(" ")));
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.startsWith("netty-async-ctx 0.") && out.contains("Netty 4.2") && out.contains("BoringSSL"), out);
    }

    @Test
    void shouldAcceptTheTls12SuitesNginxAccepts() throws Exception {
        for (String keyType : List.of("rsa", "ec")) {
            String auth = keyType.equals("rsa") ? "RSA" : "ECDSA";
            try (Server s = Server.start(List.of("--key-type", keyType))) {
                for (String suite : List.of("ECDHE-" + auth + "-CHACHA20-POLY1305", "ECDHE-" + auth
                        + "-AES256-GCM-SHA384", "ECDHE-" + auth + "-AES128-GCM-SHA256")) {
                    String out = sClient(s, List.of("-tls1_2", "-cipher", suite));
                    assertTrue(out.contains("Cipher is " + suite), suite + ":\n" + out);
                }
                for (String suite : List.of("TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_256_GCM_SHA384")) {
                    String out = sClient(s, List.of("-tls1_3", "-ciphersuites", suite));
                    assertTrue(out.contains("Cipher is " + suite), suite + ":\n" + out);
                }
            }
        }
        try (Server s = Server.start(List.of("--ciphers", "ECDHE-RSA-AES128-GCM-SHA256", "--tls-versions",
                "TLSv1.2", "--groups", "P-384"))) {
            assertTrue(sClient(s, List.of()).contains("Server Temp Key: ECDH, secp384r1"));
            String narrowed = sClient(s, List.of("-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"));
            assertTrue(narrowed.contains("alert handshake failure"), narrowed);
            assertTrue(sClient(s, List.of()).contains("Cipher is ECDHE-RSA-AES128-GCM-SHA256"));
        }
    }

    @Test
    void shouldFollowTheCipherOrderChosen() throws Exception {
        String offer = "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256";
        try (Server s = Server.start(List.of("--cipher-order", "server"))) {
            assertTrue(sClient(s, List.of("-tls1_2", "-cipher", offer)).contains("Cipher is ECDHE-RSA-AES128-GCM"));
        }
        try (Server s = Server.start(List.of("--cipher-order", "client"))) {
            assertTrue(sClient(s, List.of("-tls1_2", "-cipher", offer)).contains("Cipher is ECDHE-RSA-CHACHA20"));
        }
    }

    @Test
    void shouldVerifyClientCertificatesWithTheServerKeyOffloaded() throws Exception {
        try (Server s = Server.start(List.of("--client-ca", file("ca.pem"), "--client-auth", "require"))) {
            String alice = sClient(s, List.of("-cert", file("alice.pem"), "-key", file("alice.key")));
            assertTrue(alice.contains(", client CN=alice,O=Example"), alice);
            String none = sClient(s, List.of());
            assertTrue(none.contains("alert certificate required"), none);
            assertFalse(none.contains("hello from"), none);
            String mallory = sClient(s, List.of("-cert", file("mallory.pem"), "-key", file("mallory.key")));
            assertTrue(mallory.contains("alert"), mallory);
            assertFalse(mallory.contains("hello from"), mallory);
            String curl = ok(run(List.of("curl", "-sS", "-k", "--cert", file("alice.pem"), "--key",
                    file("alice.key"), s.url())));
            assertTrue(curl.contains(", HTTP/2, client CN=alice,O=Example"), curl);
            String metrics = ok(run(List.of("curl", "-sS", "-k", "--cert", file("alice.pem"), "--key",
                    file("alice.key"), s.url() + "metrics")));
            assertTrue(metrics.contains("asyncctx_jobs_finished_total"), "server key offloaded:\n" + metrics);
        }
        try (Server s = Server.start(List.of("--client-ca", file("ca.pem"), "--client-auth", "optional"))) {
            assertTrue(sClient(s, List.of()).contains(", no client certificate"));
            assertTrue(sClient(s, List.of("-cert", file("alice.pem"), "-key", file("alice.key")))
                    .contains(", client CN=alice,O=Example"));
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"offload", "inline", "blocking"})
    void shouldServeEd25519InEveryMode(String mode) throws Exception {
        try (Server s = Server.start(List.of("--mode", mode, "--key-type", "ed25519"))) {
            String h2 = ok(run(List.of("curl", "-sS", "-k", "--max-time", "20", s.url())));
            assertTrue(h2.startsWith("hello from netty-async-ctx over TLSv1.3"), h2);
            assertTrue(sClient(s, List.of("-tls1_2")).contains("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"));
        }
    }

    /** One {@code GET /} over HTTP/1.1 through {@code openssl s_client}; returns its output and the response. */
    private static String sClient(Server s, List<String> flags) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + s.port,
                "-ign_eof"));
        cmd.addAll(flags);
        return run(cmd, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    }

    private static String file(String name) {
        return pki.resolve(name).toString();
    }

    private static String run(List<String> cmd) throws Exception {
        return run(cmd, null);
    }

    private static int lastExit;

    private static String run(List<String> cmd, String input) throws Exception {
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

    private static String ok(String output) {
        assertEquals(0, lastExit, output);
        return output;
    }

    private static SSLContext trustAll() throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, new TrustManager[] {new X509TrustManager() {
            @Override
            public void checkClientTrusted(X509Certificate[] chain, String authType) {
            }

            @Override
            public void checkServerTrusted(X509Certificate[] chain, String authType) {
            }

            @Override
            public X509Certificate[] getAcceptedIssuers() {
                return new X509Certificate[0];
            }
        }}, null);
        return ctx;
    }

    /** The example server as a process, stopped with SIGTERM and checked to exit 0. */
    private record Server(Process process, int port, StringBuilder log) implements AutoCloseable {

        static Server start(List<String> flags) throws Exception {
            List<String> args = new ArrayList<>(List.of("server", "--port", "0", "--workers", "1"));
            args.addAll(flags);
            Process p = ServerJvm.start(args);
            StringBuilder log = new StringBuilder();
            try {
                return new Server(p, ExampleServerProcessIT.awaitPort(p, log), log);
            } catch (Throwable t) {
                p.destroyForcibly();
                throw t;
            }
        }

        String url() {
            return "https://127.0.0.1:" + port + "/";
        }

        @Override
        public void close() throws Exception {
            process.toHandle().destroy();
            try {
                assertTrue(process.waitFor(20, TimeUnit.SECONDS), "server did not stop on SIGTERM");
                assertEquals(0, process.exitValue(), log.toString());
            } finally {
                process.destroyForcibly();
            }
        }
    }
}
