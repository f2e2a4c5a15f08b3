package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsFixtures.ProcessResult;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.ResourceLeakDetector;

import java.io.OutputStream;
import java.net.Socket;
import java.time.Duration;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Bad input: random bytes, truncated and corrupted ClientHellos, and clients that vanish at every step of a handshake
 * (before the hello, inside it, while its operation is in the engine) each get their connection closed, and leave the
 * server serving with no job, registration, connection or fd left over. Also checks that {@link LeakCheck} fails on a
 * leaked buffer.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class RobustBadInputTest {

    private static X509Bundle cert;
    private static byte[] hello;

    @BeforeAll
    static void setUp() throws Exception {
        cert = TlsFixtures.certificate(KeyKind.RSA);
        hello = RobustClients.clientHello();
    }

    @ParameterizedTest
    @EnumSource(value = Transport.class, names = {"EPOLL", "NIO", "IO_URING"})
    void shouldCloseBadPeersAndKeepServingWithNothingLeftOver(Transport transport) throws Exception {
        if (transport == Transport.IO_URING) {
            Loops.factory(Loops.Transport.IO_URING); // assumes io_uring is available
        }
        int fdsBefore = Loops.openFds();
        try (FaultInjectingEngine engine = FaultInjectingEngine.builder().name("slow").latency(Duration.ofMillis(40))
                .signer(new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(), null))
                .build()) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate()).build();
            try (RobustTlsServer server = new RobustTlsServer(transport, 2, ctx)) {
                int port = server.port();
                SplittableRandom random = new SplittableRandom(42);
                int peers = 0;
                // Random bytes, some starting like a TLS handshake record.
                for (int i = 0; i < 8; i++) {
                    byte[] junk = new byte[1 + random.nextInt(3000)];
                    random.nextBytes(junk);
                    if (i % 2 == 0) {
                        junk[0] = 0x16;
                        if (junk.length > 2) {
                            junk[1] = 3;
                            junk[2] = 1;
                        }
                    }
                    assertTrue(RobustClients.sendAndAwaitClose(port, junk), "junk " + i + " left the connection open");
                    peers++;
                }
                // A ClientHello with garbage in the middle of its body.
                byte[] corrupt = hello.clone();
                for (int i = 44; i < corrupt.length; i += 7) {
                    corrupt[i] = (byte) random.nextInt(256);
                }
                assertTrue(RobustClients.sendAndAwaitClose(port, corrupt), "corrupted hello left it open");
                peers++;
                // Truncated ClientHellos; the client then shuts its side down.
                for (int len : new int[] {1, 3, 5, 6, 40, hello.length / 2, hello.length - 1}) {
                    try (Socket s = RobustClients.socket(port)) {
                        s.getOutputStream().write(Arrays.copyOf(hello, len));
                        s.getOutputStream().flush();
                        s.shutdownOutput();
                        assertTrue(s.getInputStream().read(new byte[4096]) < 0 || drain(s),
                                "truncated hello of " + len + " bytes left the connection open");
                    }
                    peers++;
                }
                // Clients that vanish: before any byte, mid-hello, and while the operation is in the engine.
                for (int delayMs : new int[] {-2, -1, 0, 5, 20, 35, 60}) {
                    try (Socket s = RobustClients.socket(port)) {
                        OutputStream out = s.getOutputStream();
                        if (delayMs == -1) {
                            out.write(hello, 0, hello.length / 3);
                        } else if (delayMs >= 0) {
                            out.write(hello);
                            out.flush();
                            if (delayMs > 0) {
                                Thread.sleep(delayMs);
                            }
                        }
                        s.setSoLinger(true, 0); // vanish with a reset
                    }
                    peers++;
                }
                int expectedPeers = peers;
                // io_uring (Netty 4.2.18) may miss a reset that comes right after the connect: SslHandler's handshake
                // timeout (RobustTlsServer.HANDSHAKE_TIMEOUT_MILLIS) closes that channel, so wait beyond it.
                Loops.await("every bad peer's handshake ended", Duration.ofSeconds(20),
                        () -> server.accepted.get() == expectedPeers
                        && server.handshakesEnded() == expectedPeers && server.openChildren.get() == 0);
                assertEquals(0, server.count(RobustTlsServer.Outcome.OK));
                assertTrue(server.unexpected.isEmpty(), () -> "unexpected failures: " + server.unexpected);

                ProcessResult ok = TlsFixtures.curl(port, "-w", " %{http_code}");
                assertTrue(ok.output().endsWith(" 200") && ok.output().startsWith("TLSv1.3"), ok.output());
                Loops.await("the loops hold nothing", server::loopsIdle);
                Loops.await("the engine holds nothing", () -> engine.inFlight() == 0);
            }
        }
        Loops.awaitFds(fdsBefore);
    }

    private static boolean drain(Socket s) throws java.io.IOException {
        byte[] buf = new byte[4096];
        try {
            while (s.getInputStream().read(buf) >= 0) {
                // the server's alert, then its close
            }
            return true;
        } catch (java.net.SocketException e) {
            return true; // reset: closed
        }
    }

    @Test
    void shouldMakeLeakCheckFailOnALeakedBuffer() throws Exception {
        ResourceLeakDetector.Level level = ResourceLeakDetector.getLevel();
        ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
        try {
            LeakCheck.assertNoLeaks("the start of the leak test");
            leakOne();
            AssertionError e = assertThrows(AssertionError.class, () -> {
                for (int i = 0; i < 20; i++) { // the collector may need a few rounds
                    LeakCheck.assertNoLeaks("the deliberate leak");
                }
            });
            assertTrue(e.getMessage().contains("LEAK"), e.getMessage());
        } finally {
            ResourceLeakDetector.setLevel(level);
        }
    }

    private static void leakOne() {
        ByteBuf leaked = PooledByteBufAllocator.DEFAULT.directBuffer(64);
        leaked.writeLong(42); // never released
    }
}
