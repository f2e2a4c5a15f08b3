package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.asyncctx.testkit.FloodingPeer;
import io.netty.channel.Channel;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.uring.IoUring;
import io.netty.handler.ssl.SslContext;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.ReferenceCountUtil;

import java.net.InetSocketAddress;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A peer that floods its handshake while the handshake's private-key operation waits, seen from outside: a raw
 * socket sends a real TLS 1.3 ClientHello, then writes well-formed TLS records of junk as fast as the socket takes
 * them. While the operation is paused (or queued for a free job) the server must read no more than the kernel's
 * buffers and one read batch; after the operation resumes the server reads on, rejects the junk and closes, and a
 * well-behaved client that waited on the same loop is served.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RobustPausedReadsTest {

    /** The bound: a paused handshake may take in well under this. */
    private static final long LIMIT = 16L << 20;
    /** Stop flooding after this much, whatever happens (an unheld server took 312 MB in 2 s). */
    private static final long FLOOD_CAP = 96L << 20;
    private static final Duration FLOOD_MAX = Duration.ofSeconds(3);
    private static final Duration FLOOD_STALL = Duration.ofMillis(600);

    private static X509Bundle cert;

    @BeforeAll
    static void setUp() throws Exception {
        cert = TlsFixtures.certificate(KeyKind.EC_P256);
    }

    static Stream<Arguments> paths() {
        return Stream.of(
                Arguments.of(Transport.EPOLL, OffloadConfig.Notify.FD),
                Arguments.of(Transport.EPOLL, OffloadConfig.Notify.CALLBACK),
                Arguments.of(Transport.IO_URING, OffloadConfig.Notify.FD),
                Arguments.of(Transport.IO_URING, OffloadConfig.Notify.CALLBACK),
                Arguments.of(Transport.NIO, OffloadConfig.Notify.CALLBACK));
    }

    private static FaultInjectingEngine gate() {
        return FaultInjectingEngine.builder().name("gate").hangRate(1.0)
                .signer(new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(), null))
                .build();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("paths")
    void shouldHoldAFloodingPeersReadsWhileItsOperationIsPaused(Transport transport, OffloadConfig.Notify notify)
            throws Exception {
        run(transport, notify, false);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("paths")
    void shouldHoldAFloodingPeersReadsWhileItWaitsForAFreeJob(Transport transport, OffloadConfig.Notify notify)
            throws Exception {
        run(transport, notify, true);
    }

    private void run(Transport transport, OffloadConfig.Notify notify, boolean queued) throws Exception {
        if (transport == Transport.IO_URING) {
            assumeTrue(IoUring.isAvailable(), "io_uring is not available on this kernel");
        }
        byte[] hello = RobustClients.clientHello();
        int fdsBefore = Loops.openFds();
        MultiThreadIoEventLoopGroup clientGroup = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        SslContext clientCtx = RobustClients.clientContext();
        try (FaultInjectingEngine gate = gate()) {
            OffloadConfig.Builder config = OffloadConfig.builder().notify(notify).operationTimeout(Duration.ZERO);
            if (queued) {
                config.maxJobsPerLoop(1);
            }
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(gate, cert.getCertificate())
                    .offloadConfig(config.build()).build();
            try (RobustTlsServer server = new RobustTlsServer(transport, 1, ctx);
                 SocketChannel flooder = SocketChannel.open()) {
                RobustClients.Client polite = null;
                if (queued) {
                    // A well-behaved client takes the loop's only job slot first; the flooder waits for it.
                    polite = RobustClients.connect(clientGroup, clientCtx, server.port());
                    Loops.await("the polite client's operation is in the engine", () -> gate.hung() == 1);
                }
                flooder.connect(new InetSocketAddress("127.0.0.1", server.port()));
                flooder.socket().setTcpNoDelay(true);
                FloodingPeer.writeFully(flooder, hello);
                if (queued) {
                    Loops.await("the flooder waits for a free job",
                            () -> server.sum(AsyncOffloadLoops::jobsWaiting) == 1);
                } else {
                    Loops.await("the flooder's operation is paused in the engine", () -> gate.hung() == 1);
                    polite = RobustClients.connect(clientGroup, clientCtx, server.port());
                    Loops.await("the polite client's operation is paused too", () -> gate.hung() == 2);
                }
                Channel floodedChild = server.children.get(queued ? 1 : 0);
                RobustTlsServer.BytesRead serverRead = server.bytesRead.get(queued ? 1 : 0);

                long written = FloodingPeer.flood(flooder, FLOOD_CAP, FLOOD_MAX, FLOOD_STALL);
                long readDuringPause = serverRead.get();
                System.out.printf("paused-reads %s %s %s: client wrote %.1f MB, server read %.2f MB during the pause%n",
                        transport, notify, queued ? "queued" : "paused", written / 1048576.0,
                        readDuringPause / 1048576.0);
                assertTrue(floodedChild.isActive(), "the flooder's connection is still open while it waits");
                assertTrue(written < LIMIT, "the flooder got " + written + " bytes into a waiting handshake");
                assertTrue(readDuringPause < LIMIT, "the server read " + readDuringPause
                        + " bytes from a peer whose handshake waits");
                assertEquals(queued ? 1 : 2, gate.hung(), "nothing resumed during the flood");

                // Let the operations go: the server reads on, meets the junk, and closes the flooder.
                int released = 0;
                while (released < 2) {
                    released += gate.completeHung();
                    if (released < 2) {
                        Loops.await("the next operation reaches the engine", () -> gate.hung() > 0);
                    }
                }
                assertTrue(FloodingPeer.awaitClosedByServer(flooder, Duration.ofSeconds(20)),
                        "the server closed the flooder after reading its junk");

                // The polite client was served on the same loop.
                RobustClients.Client p = polite;
                assertNotNull(p);
                assertTrue(p.handshake().await(10, TimeUnit.SECONDS) && p.handshake().isSuccess(),
                        () -> "polite handshake: " + p.handshake().cause());
                p.get();
                String res = p.responses().poll(10, TimeUnit.SECONDS);
                assertNotNull(res, "the polite client got no answer");
                assertTrue(res.startsWith("200 TLSv1.3"), res);
                p.channel().close().sync();
                Loops.await("no job, waiter, registration or connection left", server::loopsIdle);
            }
        } finally {
            ReferenceCountUtil.release(clientCtx);
            Loops.shutdown(clientGroup);
        }
        Loops.awaitFds(fdsBefore);
    }
}
