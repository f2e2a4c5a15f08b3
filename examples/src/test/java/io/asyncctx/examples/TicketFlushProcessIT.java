package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Issue 21, item 1: with mutual TLS and RSA client certificates the TLS 1.3 ticket record is larger than Netty's
 * 2,048-byte BIO buffer (2,141 bytes with RSA-2048, 2,370 with RSA-4096). Every byte of it must reach a client that
 * reads before it writes: {@code openssl s_client} sees both NewSessionTicket messages while it has sent nothing after
 * its Finished, then resumes with the saved session; {@code gnutls-cli --resume} resumes. In every mode.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class TicketFlushProcessIT {

    @TempDir
    static Path pki;

    @BeforeAll
    static void makeCertificates() throws Exception {
        run(List.of("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", file("ca.key"), "-out",
                file("ca.pem"), "-days", "2", "-subj", "/CN=Example CA"));
        for (String[] c : new String[][] {{"alice", "rsa:2048"}, {"bob", "rsa:4096"}}) {
            run(List.of("openssl", "req", "-newkey", c[1], "-nodes", "-keyout", file(c[0] + ".key"), "-out",
                    file(c[0] + ".csr"), "-subj", "/O=Example/CN=" + c[0]));
            run(List.of("openssl", "x509", "-req", "-in", file(c[0] + ".csr"), "-CA", file("ca.pem"), "-CAkey",
                    file("ca.key"), "-CAcreateserial", "-out", file(c[0] + ".pem"), "-days", "2"));
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({
        "offload, alice",
        "offload, bob",
        "inline, alice",
        "inline, bob",
        "blocking, bob"
    })
    void shouldSendEveryTicketByteBeforeTheClientWrites(String mode, String client) throws Exception {
        Process server = ServerJvm.start(List.of("server", "--port", "0", "--workers", "1", "--mode",
                mode, "--client-ca", file("ca.pem"), "--no-http2"));
        StringBuilder log = new StringBuilder();
        try {
            int port = ExampleServerProcessIT.awaitPort(server, log);
            Path session = pki.resolve(mode + "-" + client + ".session");
            // s_client writes nothing after its Finished while stdin stays open: the tickets must come on their own.
            Process s = new ProcessBuilder("openssl", "s_client", "-connect", "127.0.0.1:" + port, "-tls1_3", "-msg",
                    "-cert", file(client + ".pem"), "-key", file(client + ".key"), "-sess_out", session.toString())
                    .redirectErrorStream(true).start();
            try {
                BufferedReader r = new BufferedReader(new InputStreamReader(s.getInputStream(),
                        StandardCharsets.UTF_8));
                StringBuilder seen = new StringBuilder();
                CompletableFuture<Integer> tickets = CompletableFuture.supplyAsync(() -> {
                    int n = 0;
                    try {
                        for (String line; n < 2 && (line = r.readLine()) != null; ) {
                            seen.append(line).append('\n');
                            if (line.startsWith("<<<") && line.contains("NewSessionTicket")) {
                                n++;
                            }
                        }
                    } catch (java.io.IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                    return n;
                }, ServerJvm.OWN_THREAD);
                int n;
                try {
                    n = tickets.get(30, TimeUnit.SECONDS);
                } catch (TimeoutException e) {
                    throw new AssertionError("the tickets did not arrive while the client waited:\n" + seen);
                }
                assertEquals(2, n, "NewSessionTicket messages received:\n" + seen);
            } finally {
                s.getOutputStream().close(); // EOF on stdin: s_client closes and exits
                assertTrue(s.waitFor(30, TimeUnit.SECONDS), "s_client did not exit");
                s.destroyForcibly();
            }
            assertTrue(Files.size(session) > 0, "no session saved");
            String resumed = run(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + port, "-cert",
                    file(client + ".pem"), "-key", file(client + ".key"), "-sess_in", session.toString()));
            assertTrue(resumed.contains("Reused, TLSv1.3"), resumed);
            // --waitresumption: gnutls-cli waits for the tickets before it saves the session (by default it gives
            // them its round-trip estimate + 60 ms, which a busy 2-core machine can miss); it sends nothing first, so
            // it still resumes only if the tickets come with the handshake. timeout 30: if they never come, the check
            // fails then instead of waiting for ever.
            String gnutls = run(List.of("timeout", "30", "gnutls-cli", "--insecure", "--resume", "--waitresumption",
                    "--x509certfile", file(client + ".pem"), "--x509keyfile", file(client + ".key"), "--port",
                    String.valueOf(port), "127.0.0.1"));
            assertTrue(gnutls.contains("This is a resumed session"), gnutls);
            server.toHandle().destroy();
            assertTrue(server.waitFor(30, TimeUnit.SECONDS), "server did not stop on SIGTERM");
            assertEquals(0, server.exitValue(), log.toString());
        } finally {
            server.destroyForcibly();
        }
    }

    private static String file(String name) {
        return pki.resolve(name).toString();
    }

    /** Runs a command with stdin closed; its output. */
    static String run(List<String> cmd) throws Exception {
        Process p = new ProcessBuilder(new ArrayList<>(cmd)).redirectErrorStream(true).start();
        try {
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "timed out: " + cmd);
            return out;
        } finally {
            p.destroyForcibly();
        }
    }
}
