package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Bad input against the example server as a process: random bytes, truncated and corrupted ClientHellos and clients
 * that vanish mid-hello each get their connection closed by the server (a vanishing peer's reset without a log
 * line); afterwards curl still gets 200 and SIGTERM ends the server with exit code 0.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class BadInputProcessIT {

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({
        "fd, epoll",
        "callback, nio",
        "fd, io_uring"
    })
    void shouldCloseBadPeersAndKeepServing(String notify, String transport) throws Exception {
        Process p = ServerJvm.start(List.of("server", "--port", "0", "--mode", "offload", "--notify",
                notify, "--transport", transport, "--workers", "1"));
        StringBuilder log = new StringBuilder();
        try {
            int port = ExampleServerProcessIT.awaitPort(p, log);
            byte[] hello = clientHello();
            SplittableRandom random = new SplittableRandom(7);
            for (int i = 0; i < 10; i++) {
                byte[] junk = new byte[1 + random.nextInt(4000)];
                random.nextBytes(junk);
                if (i % 2 == 0) {
                    junk[0] = 0x16; // looks like a handshake record
                }
                assertTrue(closedByServer(port, junk, false), "junk " + i + " left the connection open");
            }
            byte[] corrupt = hello.clone();
            for (int i = 44; i < corrupt.length; i += 5) {
                corrupt[i] ^= (byte) 0x5a;
            }
            assertTrue(closedByServer(port, corrupt, false), "a corrupted ClientHello left the connection open");
            for (int len : new int[] {1, 5, 9, 60, hello.length / 2, hello.length - 1}) {
                assertTrue(closedByServer(port, Arrays.copyOf(hello, len), true),
                        "a ClientHello cut at " + len + " bytes left the connection open");
            }
            for (int len : new int[] {0, 20, hello.length}) { // vanish with a reset at several points
                try (Socket s = new Socket()) {
                    s.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
                    s.getOutputStream().write(hello, 0, len);
                    s.setSoLinger(true, 0);
                }
            }
            String body = ExampleServerProcessIT.curl(port);
            assertTrue(body.startsWith("hello from netty-async-ctx over TLSv1.3"), body);
            p.toHandle().destroy(); // SIGTERM
            assertTrue(p.waitFor(20, TimeUnit.SECONDS), "server did not stop on SIGTERM");
            String rest = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertEquals(0, p.exitValue(), "exit code after SIGTERM; output:\n" + log + rest);
            // A peer's reset is routine (every storm client's close may be one): no stack trace per connection.
            assertFalse((log + rest).contains("Connection reset"), "the server logged a peer's reset:\n" + log + rest);
        } finally {
            p.destroyForcibly();
        }
    }

    /** Sends {@code bytes} (then half-closes when asked) and reads until the server closes: true if it did. */
    private static boolean closedByServer(int port, byte[] bytes, boolean shutdownOutput) throws IOException {
        try (Socket s = new Socket()) {
            s.setSoTimeout(15_000);
            s.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
            s.getOutputStream().write(bytes);
            s.getOutputStream().flush();
            if (shutdownOutput) {
                s.shutdownOutput();
            }
            InputStream in = s.getInputStream();
            byte[] buf = new byte[4096];
            try {
                while (in.read(buf) >= 0) {
                    // the server's alert, if any, then its close
                }
                return true;
            } catch (SocketTimeoutException e) {
                return false;
            } catch (SocketException e) {
                return true; // reset by the server
            }
        }
    }

    /** A real TLS 1.3 ClientHello record from the JDK's client engine. */
    static byte[] clientHello() throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLSv1.3");
        ctx.init(null, null, null);
        SSLEngine engine = ctx.createSSLEngine("localhost", 443);
        engine.setUseClientMode(true);
        ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
        engine.wrap(ByteBuffer.allocate(0), out);
        out.flip();
        byte[] hello = new byte[out.remaining()];
        out.get(hello);
        assertEquals(0x16, hello[0], "a handshake record");
        return hello;
    }
}
