package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The example server as a user runs it: the shaded jar started as a process, a real handshake and request with curl
 * per mode, then SIGTERM and exit code 0. Bad flags print what is wrong and exit non-zero.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class ExampleServerProcessIT {

    private static final Pattern LISTENING = Pattern.compile("listening on https://127\\.0\\.0\\.1:(\\d+)");

    static int awaitPort(Process p, StringBuilder log) throws IOException {
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line;
        while ((line = r.readLine()) != null) {
            log.append(line).append('\n');
            Matcher m = LISTENING.matcher(line);
            if (m.find()) {
                return Integer.parseInt(m.group(1));
            }
        }
        throw new AssertionError("server exited before listening:\n" + log);
    }

    static String curl(int port) throws Exception {
        Process c = new ProcessBuilder("curl", "-sS", "-k", "--max-time", "20", "https://127.0.0.1:" + port + "/")
                .redirectErrorStream(true).start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        c.getInputStream().transferTo(out);
        assertTrue(c.waitFor(30, TimeUnit.SECONDS));
        return out.toString(StandardCharsets.UTF_8);
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @CsvSource({
        "offload, fd, epoll",
        "offload, callback, epoll",
        "offload, fd, io_uring",
        "offload, callback, nio",
        "inline, fd, epoll",
        "blocking, fd, epoll"
    })
    void shouldServeOneHandshakePerModeAndExitZeroOnSigterm(String mode, String notify, String transport)
            throws Exception {
        Process p = ServerJvm.start(List.of("server", "--port", "0", "--mode", mode, "--notify", notify,
                "--transport", transport, "--workers", "1"));
        StringBuilder log = new StringBuilder();
        try {
            int port = awaitPort(p, log);
            String body = curl(port);
            assertTrue(body.startsWith("hello from netty-async-ctx over TLSv1.3"), body);
            p.toHandle().destroy(); // SIGTERM
            assertTrue(p.waitFor(20, TimeUnit.SECONDS), "server did not stop on SIGTERM");
            assertEquals(0, p.exitValue(), "exit code after SIGTERM; output:\n" + log
                    + new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
        } finally {
            p.destroyForcibly();
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "--mode fast|--mode fast: expected offload, inline or blocking",
        "--transport rdma|--transport rdma: expected epoll, io_uring or nio",
        "--notify poll|--notify poll: expected fd or callback",
        "--cert /nonexistent.pem --key /nonexistent.pem|no such readable file",
        "--engine quantum|--engine quantum: expected",
        "--threads 0|--threads 0: expected at least 1",
        "--transport nio --notify fd|NIO does not have"
    })
    void shouldExplainBadFlagsAndExitNonZero(String flags, String expected) throws Exception {
        List<String> args = new ArrayList<>(List.of("server", "--port", "0"));
        args.addAll(List.of(flags.split(" ")));
        Process p = ServerJvm.start(args);
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            assertNotEquals(0, p.exitValue(), out);
            assertTrue(out.contains(expected), "expected '" + expected + "' in:\n" + out);
        } finally {
            p.destroyForcibly();
        }
    }

    /** Makes a self-signed RSA-2048 pair as the README does: key.pem, chain.pem in {@code dir}. */
    static void selfSigned(Path dir) throws Exception {
        Process gen = new ProcessBuilder("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                dir.resolve("key.pem").toString(), "-out", dir.resolve("chain.pem").toString(), "-days", "2", "-subj",
                "/CN=localhost").redirectErrorStream(true).start();
        gen.getInputStream().readAllBytes();
        assertTrue(gen.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, gen.exitValue());
    }

    /** The README's minimal server as the README runs it ({@code java --enable-native-access=ALL-UNNAMED -cp}). */
    static Process startMinimal(Path dir, int port) throws IOException {
        return ServerJvm.mainClass(List.of("--enable-native-access=ALL-UNNAMED"),
                "io.asyncctx.examples.MinimalOffloadServer", List.of("--cert", dir.resolve("chain.pem").toString(),
                        "--key", dir.resolve("key.pem").toString(), "--port", String.valueOf(port))).start();
    }

    @Test
    void shouldServeTheReadmeMinimalServer(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        selfSigned(dir);
        Process p = startMinimal(dir, 0);
        try {
            BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            // A JVM may print warnings first (Java 24+ without native access, a future deprecation): skip them.
            Pattern listening = Pattern.compile("^listening on 127\\.0\\.0\\.1:(\\d+)$");
            StringBuilder before = new StringBuilder();
            Matcher m = null;
            for (String line; (line = r.readLine()) != null; ) {
                Matcher l = listening.matcher(line);
                if (l.find()) {
                    m = l;
                    break;
                }
                before.append(line).append('\n');
            }
            assertTrue(m != null, "no 'listening on 127.0.0.1:PORT' line; output:\n" + before);
            assertTrue(before.toString().lines().noneMatch(l -> l.contains("restricted method")),
                    "native access not granted:\n" + before);
            String body = curl(Integer.parseInt(m.group(1)));
            assertEquals("hello over TLS, key offloaded\n", body);
        } finally {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void shouldSayInOneLineThatTheMinimalServersPortIsTaken(@org.junit.jupiter.api.io.TempDir Path dir)
            throws Exception {
        selfSigned(dir);
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1,
                java.net.InetAddress.getByName("127.0.0.1"))) {
            Process p = startMinimal(dir, taken.getLocalPort());
            try {
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                assertTrue(p.waitFor(30, TimeUnit.SECONDS));
                assertEquals(2, p.exitValue(), out);
                List<String> lines = out.lines().filter(l -> !l.isBlank()).toList();
                assertEquals(1, lines.size(), "one line expected:\n" + out);
                assertTrue(lines.get(0).startsWith("cannot listen on 127.0.0.1:" + taken.getLocalPort() + " ("), out);
                assertTrue(lines.get(0).contains("Address already in use"), out);
            } finally {
                p.destroyForcibly();
            }
        }
    }

    @Test
    void shouldRefuseAKeyThatDoesNotMatchInOneLine(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        selfSigned(dir);
        Path other = Files.createDirectory(dir.resolve("other"));
        selfSigned(other);
        Process p = ServerJvm.start(List.of("server", "--port", "0", "--cert", dir.resolve("chain.pem").toString(),
                "--key", other.resolve("key.pem").toString()));
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            assertEquals(2, p.exitValue(), out);
            assertTrue(out.contains("does not match"), out);
            assertTrue(out.lines().noneMatch(l -> l.startsWith("\tat ") || l.contains("Exception")), out);
            assertTrue(out.lines().filter(l -> !l.isBlank()).count() <= 2, out);
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void shouldPrintUsage() throws Exception {
        Process p = ServerJvm.start(List.of("server", "--help"));
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue());
        assertTrue(out.contains("--mode"), out);
    }
}
