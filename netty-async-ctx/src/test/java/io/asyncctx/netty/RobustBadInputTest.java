package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsFixtures.ProcessResult;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.asyncctx.testkit.Await;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.ResourceLeakDetector;

import java.io.OutputStream;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
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
 * (before the hello, inside it, while its operation is in the engine, after the server's answer) each get their
 * connection closed, and leave the server serving with no job, registration, connection or fd left over. Also checks
 * that {@link LeakCheck} fails on a leaked buffer.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class RobustBadInputTest {

    /**
     * SslHandler's handshake timeout on this test's servers: it closes the junk peers that stall inside a record (and,
     * on io_uring, a connection whose reset was missed). Shorter than the robustness servers' default, so that those
     * waits are short; a real handshake here (curl's) takes well under it.
     */
    private static final long HANDSHAKE_TIMEOUT_MILLIS = 2_000;

    /** When a vanishing client resets its connection. */
    enum Vanish {
        /** Before sending any byte. */
        BEFORE_ANY_BYTE,
        /** After a third of its ClientHello. */
        MID_HELLO,
        /** Right after its whole ClientHello, not waiting for anything. */
        RIGHT_AFTER_HELLO,
        /** Once the server has read the whole hello, so its operation is in the engine. */
        OPERATION_IN_ENGINE,
        /** Once the server's flight, sent when the signature came back, has arrived. */
        AFTER_SERVER_FLIGHT
    }

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
            try (RobustTlsServer server = new RobustTlsServer(transport,
                    new MultiThreadIoEventLoopGroup(2, transport.factory()), ctx, HANDSHAKE_TIMEOUT_MILLIS)) {
                int port = server.port();
                SplittableRandom random = new SplittableRandom(42);
                int peers = 0;
                // Random bytes, some starting like a TLS handshake record. Where such a record announces more bytes
                // than follow, the peer stalls and the handshake timeout closes it: all are sent at once, so that the
                // stalls overlap instead of adding up.
                List<Socket> junkPeers = new ArrayList<>();
                try {
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
                        Socket s = RobustClients.socket(port);
                        junkPeers.add(s);
                        s.getOutputStream().write(junk);
                        peers++;
                    }
                    for (int i = 0; i < junkPeers.size(); i++) {
                        assertTrue(RobustClients.awaitClose(junkPeers.get(i)),
                                "junk " + i + " left the connection open");
                    }
                } finally {
                    for (Socket s : junkPeers) {
                        s.close();
                    }
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
                // Clients that vanish with a reset at each step, each step reached by the server-side event rather
                // than by a guessed delay.
                for (Vanish when : Vanish.values()) {
                    try (Socket s = RobustClients.socket(port)) {
                        OutputStream out = s.getOutputStream();
                        switch (when) {
                            case BEFORE_ANY_BYTE -> {
                            }
                            case MID_HELLO -> out.write(hello, 0, hello.length / 3);
                            case RIGHT_AFTER_HELLO -> out.write(hello);
                            case OPERATION_IN_ENGINE -> {
                                out.write(hello);
                                // The loop that read the hello submitted its operation in that same task, before it
                                // can see the reset; the engine takes 40 ms to answer.
                                server.awaitRead(s.getLocalPort(), hello.length);
                            }
                            case AFTER_SERVER_FLIGHT -> {
                                out.write(hello);
                                // BoringSSL sends the flight (ServerHello to Finished) once its CertificateVerify is
                                // signed: the operation has come back from the engine.
                                int first = s.getInputStream().read();
                                assertEquals(0x16, first, "the server's flight begins with a handshake record");
                            }
                            default -> throw new AssertionError(when);
                        }
                        s.setSoLinger(true, 0); // vanish with a reset
                    }
                    peers++;
                }
                int expectedPeers = peers;
                // io_uring (Netty 4.2.18) may miss a reset that comes right after the connect: SslHandler's handshake
                // timeout (HANDSHAKE_TIMEOUT_MILLIS) closes that channel, so wait beyond it.
                Await.until(() -> "every bad peer's handshake ended: of " + expectedPeers
                        + " peers, accepted " + server.accepted.get() + ", handshakes ended "
                        + server.handshakesEnded() + ", open " + server.openChildren.get(), Duration.ofSeconds(20),
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
