package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.netty.channel.Channel;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.uring.IoUring;
import io.netty.handler.ssl.SslContext;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.ReferenceCountUtil;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
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
                writeFully(flooder, hello);
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

                long written = flood(flooder);
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
                assertTrue(awaitClosedByServer(flooder), "the server closed the flooder after reading its junk");

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

    private static void writeFully(SocketChannel ch, byte[] bytes) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /**
     * Writes well-formed TLS application-data records (16 KB of junk each) without blocking, until the socket takes
     * nothing for {@link #FLOOD_STALL}, {@link #FLOOD_MAX} passed, or {@link #FLOOD_CAP} bytes were taken.
     */
    private static long flood(SocketChannel ch) throws IOException, InterruptedException {
        ch.configureBlocking(false);
        byte[] record = new byte[5 + 16384];
        record[0] = 0x17;
        record[1] = 0x03;
        record[2] = 0x03;
        record[3] = 0x40;
        record[4] = 0x00;
        for (int i = 5; i < record.length; i++) {
            record[i] = (byte) (i * 31);
        }
        ByteBuffer chunk = ByteBuffer.allocateDirect(record.length * 8);
        long total = 0;
        long start = System.nanoTime();
        long lastProgress = start;
        while (total < FLOOD_CAP && System.nanoTime() - start < FLOOD_MAX.toNanos()) {
            if (!chunk.hasRemaining() || chunk.position() == 0) {
                chunk.clear();
                while (chunk.remaining() >= record.length) {
                    chunk.put(record);
                }
                chunk.flip();
            }
            int n = ch.write(chunk);
            long now = System.nanoTime();
            if (n > 0) {
                total += n;
                lastProgress = now;
            } else if (now - lastProgress > FLOOD_STALL.toNanos()) {
                break;
            } else {
                Thread.sleep(1);
            }
        }
        return total;
    }

    /** Reads (discarding) until the server closes or resets the connection; false if it stays open 20 s. */
    private static boolean awaitClosedByServer(SocketChannel ch) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        try (Selector sel = Selector.open()) {
            ch.register(sel, SelectionKey.OP_READ);
            while (System.nanoTime() < deadline) {
                sel.select(500);
                sel.selectedKeys().clear();
                try {
                    int n;
                    while ((n = ch.read(buf)) > 0) {
                        buf.clear();
                    }
                    if (n < 0) {
                        return true;
                    }
                } catch (IOException reset) {
                    return true;
                }
            }
        }
        return false;
    }
}
