package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.asyncctx.testkit.SimulatedAcceleratorEngine;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.OpenSslAsyncPrivateKeyMethod;
import io.netty.handler.ssl.OpenSslContextOption;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.concurrent.Future;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Real TLS handshakes through the simulated accelerator (a fixed service latency, a bounded ring, a poller that
 * completes batches): on one event loop, handshakes that each wait 200 ms for their signature overlap instead of
 * queueing behind each other, while the naive baseline (the same engine called synchronously on the loop)
 * serializes them; a full ring answers EAGAIN and the handshakes still complete; and with a shared eventfd a thousand
 * paused handshakes (held by an engine that completes them when the test says) cost the process one eventfd.
 *
 * <p>The baseline is built here rather than taken from the examples module: a keyless BoringSSL context whose
 * {@link OpenSslAsyncPrivateKeyMethod} submits to the engine and blocks the event loop until it answers.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TlsSimulatedTest {

    private static final Duration LATENCY = Duration.ofMillis(200);

    private static X509Bundle cert;

    private EventLoopGroup clientGroup;
    private SslContext client;

    @BeforeAll
    static void createCertificate() throws Exception {
        cert = TlsFixtures.certificate(KeyKind.EC_P256);
    }

    @AfterAll
    static void dropCertificate() {
        cert = null;
    }

    @BeforeEach
    void startClients() throws Exception {
        clientGroup = new MultiThreadIoEventLoopGroup(2, EpollIoHandler.newFactory());
        client = TlsFixtures.insecureTls13Client();
    }

    @AfterEach
    void stopClients() throws Exception {
        clientGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
    }

    private static SimulatedAcceleratorEngine engine(Duration latency, int ringSize, FdMode fdMode) {
        return SimulatedAcceleratorEngine.builder().name("sim-" + latency.toMillis() + "ms")
                .latency(latency).ringSize(ringSize).fdMode(fdMode)
                .signer(JcaKeySigner.withJdkFallback(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(),
                        CryptoProviders.select(CryptoProviders.Choice.AUTO)))
                .build();
    }

    private static AsyncSslContext offloadContext(AsyncEngine engine, OffloadConfig config) throws Exception {
        return AsyncSslContextBuilder.forServer(engine, cert.getCertificate()).offloadConfig(config)
                .protocols("TLSv1.3").build();
    }

    @Test
    void shouldOverlapFiftyHandshakesOnOneLoopWhileEachSignatureTakes200Ms() throws Exception {
        int n = 50;
        try (SimulatedAcceleratorEngine engine = engine(LATENCY, 1024, FdMode.SHARED_PER_LOOP)) {
            AsyncSslContext ctx = offloadContext(engine, OffloadConfig.defaults());
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
                long nanos = handshakeAll(server.port(), n, Duration.ofSeconds(30));
                System.out.printf("offload: %d handshakes, 1 loop, %d ms latency: %d ms wall, %d in flight at most%n",
                        n, LATENCY.toMillis(), TimeUnit.NANOSECONDS.toMillis(nanos), engine.maxInFlight());
                // Overlap shown by the engine's own count, not by the wall time (a loaded machine stretches that).
                assertTrue(engine.maxInFlight() > 1, "the signatures overlapped in the engine: at most "
                        + engine.maxInFlight() + " in flight");
                Loops.await("the server completed " + n + " handshakes", () -> server.handshakes.get() == n);
                assertEquals(n, ctx.offloadedOperations());
                assertEquals(n, engine.completed());
            }
        }
    }

    @Test
    void shouldSerializeHandshakesWhenTheSameEngineIsCalledBlockingOnTheLoop() throws Exception {
        int n = 10;
        try (SimulatedAcceleratorEngine engine = engine(LATENCY, 1024, FdMode.SHARED_PER_LOOP)) {
            AsyncSslContext ctx = offloadContext(engine, OffloadConfig.defaults());
            long offload;
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
                offload = handshakeAll(server.port(), n, Duration.ofSeconds(30));
                assertEquals(n, ctx.offloadedOperations());
            }
            int offloadOverlap = engine.maxInFlight();
            SimulatedAcceleratorEngine blockingEngine = engine(LATENCY, 1024, FdMode.SHARED_PER_LOOP);
            SslContext blocking = SslContextBuilder.forServer(new KeylessKeyManager(cert.getCertificate()))
                    .sslProvider(SslProvider.OPENSSL).protocols("TLSv1.3")
                    .option(OpenSslContextOption.ASYNC_PRIVATE_KEY_METHOD, new io.asyncctx.testkit.BlockingKeyMethod(blockingEngine))
                    .build();
            long serialized;
            EventLoopGroup serverGroup = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
            try {
                Channel server = new ServerBootstrap().group(serverGroup).channel(EpollServerSocketChannel.class)
                        .childHandler(new ChannelInitializer<SocketChannel>() {
                            @Override
                            protected void initChannel(SocketChannel ch) {
                                ch.pipeline().addLast(blocking.newHandler(ch.alloc()));
                            }
                        }).bind("127.0.0.1", 0).sync().channel();
                try {
                    serialized = handshakeAll(((InetSocketAddress) server.localAddress()).getPort(), n,
                            Duration.ofSeconds(30));
                } finally {
                    server.close().sync();
                }
            } finally {
                serverGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
                blockingEngine.close();
            }
            System.out.printf("%d handshakes, 1 loop, %d ms latency: offload %d ms, blocking %d ms%n", n,
                    LATENCY.toMillis(), TimeUnit.NANOSECONDS.toMillis(offload),
                    TimeUnit.NANOSECONDS.toMillis(serialized));
            assertEquals(n, blockingEngine.completed(), "the blocking baseline used the same kind of engine");
            // Counted, not timed: offload overlapped the signatures, the blocking method never had two in flight.
            assertTrue(offloadOverlap > 1, "offload: at most " + offloadOverlap + " in flight");
            assertEquals(1, blockingEngine.maxInFlight(), "blocking on the loop serializes the signatures");
            // A lower bound only: 10 serialized waits of 200 ms cannot take less than 2 s on any machine.
            assertTrue(serialized >= TimeUnit.MILLISECONDS.toNanos(1800), "blocking took "
                    + TimeUnit.NANOSECONDS.toMillis(serialized) + " ms; " + n + " serialized 200 ms waits take 2 s");
        }
    }

    @Test
    void shouldCompleteEveryHandshakeWhenTheFullRingAnswersEagain() throws Exception {
        int n = 12;
        try (SimulatedAcceleratorEngine engine = engine(Duration.ofMillis(50), 2, FdMode.SHARED_PER_LOOP)) {
            OffloadConfig config = OffloadConfig.builder().eagainInitialBackoff(Duration.ofMillis(1))
                    .eagainMaxBackoff(Duration.ofMillis(10)).eagainMaxRetries(500).build();
            AsyncSslContext ctx = offloadContext(engine, config);
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
                handshakeAll(server.port(), n, Duration.ofSeconds(30));
                System.out.printf("ring of 2, %d handshakes: %d EAGAIN answers, %d in flight at most%n", n,
                        engine.rejected(), engine.maxInFlight());
                assertTrue(engine.rejected() > 0, "the full ring answered EAGAIN");
                assertTrue(engine.maxInFlight() <= 2, "never more than the ring in flight: " + engine.maxInFlight());
                assertEquals(n, engine.completed());
                Loops.await("the server completed " + n + " handshakes", () -> server.handshakes.get() == n);
                assertEquals(0, server.handshakeFailures.get(), () -> String.valueOf(server.lastHandshakeFailure));
            }
        }
    }

    /**
     * A thousand handshakes paused at once on one loop: with {@link FdMode#SHARED_PER_LOOP} the process gains one
     * eventfd; with {@link FdMode#PER_CTX} (fewer connections, the contrast) one per paused connection. Sockets grow
     * either way, so only {@code anon_inode:[eventfd]} entries are counted. The engine holds every operation (a fault
     * injecting engine whose operations all hang) until all n are paused, so the count is taken at that moment rather
     * than sampled while a fixed latency runs out; then it completes them all.
     */
    @ParameterizedTest(name = "{0}")
    @EnumSource(FdMode.class)
    void shouldKeepEventfdCountIndependentOfPausedHandshakesWithSharedFd(FdMode mode) throws Exception {
        int wanted = mode == FdMode.SHARED_PER_LOOP ? 1000 : 100;
        long limit = openFileLimit();
        int before = openFdCount();
        // Each connection holds two sockets here (client and server side); keep 500 fds of headroom.
        int n = (int) Math.min(wanted, (limit - before - 500) / 2);
        System.out.printf("open-files limit %d, %d fds open, %d connections%n", limit, before, n);
        assertTrue(n >= 100, "the open-files limit " + limit + " is too low for this test; raise ulimit -n");
        try (FaultInjectingEngine engine = FaultInjectingEngine.builder().name("held").fdMode(mode).hangRate(1.0)
                .signer(JcaKeySigner.withJdkFallback(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(),
                        CryptoProviders.select(CryptoProviders.Choice.AUTO)))
                .build()) {
            AsyncSslContext ctx = offloadContext(engine, OffloadConfig.builder().notify(OffloadConfig.Notify.FD)
                    .operationTimeout(Duration.ofSeconds(60)).build());
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
                int eventfdsBefore = eventfdCount();
                List<Channel> channels = connect(server.port(), n);
                // A ctx gets its wait fd before its operation is offered, so with all n in the engine all are counted.
                Loops.await("all " + n + " handshakes paused in the engine", Duration.ofSeconds(60),
                        () -> engine.inFlight() == n);
                int eventfds = eventfdCount();
                System.out.printf("%s: %d handshakes paused at once, eventfds %d -> %d, all fds %d -> %d%n", mode, n,
                        eventfdsBefore, eventfds, before, openFdCount());
                if (mode == FdMode.SHARED_PER_LOOP) {
                    assertEquals(eventfdsBefore + 1, eventfds, n + " paused handshakes on one loop share one eventfd");
                } else {
                    assertTrue(eventfds >= eventfdsBefore + n, "per-ctx eventfds: " + eventfdsBefore + " -> "
                            + eventfds + " with " + n + " paused handshakes");
                }
                assertEquals(n, engine.completeHung());
                awaitHandshakes(channels, Duration.ofSeconds(60));
                for (Channel ch : channels) {
                    ch.close();
                }
                for (Channel ch : channels) {
                    ch.closeFuture().await(10, TimeUnit.SECONDS);
                }
                assertEquals(n, engine.completed());
                Loops.await("server saw " + n + " handshakes", () -> server.handshakes.get() == n);
                Loops.await("the engine's eventfds closed with the connections", Duration.ofSeconds(20),
                        () -> eventfdCount() <= eventfdsBefore);
            }
        }
    }

    /** Connects {@code n} clients at once, waits for all handshakes; returns the wall time from first connect. */
    private long handshakeAll(int port, int n, Duration timeout) throws Exception {
        long start = System.nanoTime();
        List<Channel> channels = connect(port, n);
        try {
            awaitHandshakes(channels, timeout);
            return System.nanoTime() - start;
        } finally {
            for (Channel ch : channels) {
                ch.close().sync();
            }
        }
    }

    private List<Channel> connect(int port, int n) throws InterruptedException {
        Bootstrap b = new Bootstrap().group(clientGroup).channel(EpollSocketChannel.class)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        // No peer host: no session resumption, every handshake is a full one.
                        SslHandler ssl = client.newHandler(ch.alloc());
                        ssl.setHandshakeTimeoutMillis(120_000); // a loaded machine, 1000 handshakes on one loop
                        ch.pipeline().addLast(ssl);
                    }
                });
        List<ChannelFuture> connects = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            connects.add(b.connect("127.0.0.1", port));
        }
        List<Channel> channels = new ArrayList<>(n);
        for (ChannelFuture f : connects) {
            assertTrue(f.await(30, TimeUnit.SECONDS), "connect timed out");
            assertTrue(f.isSuccess(), () -> String.valueOf(f.cause()));
            channels.add(f.channel());
        }
        return channels;
    }

    private static void awaitHandshakes(List<Channel> channels, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (Channel ch : channels) {
            SslHandler ssl = ch.pipeline().get(SslHandler.class);
            assertTrue(ssl != null, "the client channel closed before its handshake ended");
            Future<Channel> hs = ssl.handshakeFuture();
            long left = Math.max(1, deadline - System.nanoTime());
            assertTrue(hs.await(left, TimeUnit.NANOSECONDS), "handshake timed out");
            assertTrue(hs.isSuccess(), () -> String.valueOf(hs.cause()));
        }
    }

    /** The eventfds of this process: entries of /proc/self/fd that link to anon_inode:[eventfd]. */
    private static int eventfdCount() {
        return countFds("anon_inode:[eventfd]");
    }

    private static int openFdCount() {
        return countFds("");
    }

    private static int countFds(String linkPrefix) {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return (int) s.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().startsWith(linkPrefix);
                } catch (IOException e) {
                    return false; // closed meanwhile (the listing's own fd)
                }
            }).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The soft limit on open files of this process, from /proc/self/limits. */
    private static long openFileLimit() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/limits"))) {
            if (line.startsWith("Max open files")) {
                String soft = line.substring("Max open files".length()).trim().split("\\s+")[0];
                return soft.equals("unlimited") ? Long.MAX_VALUE : Long.parseLong(soft);
            }
        }
        throw new IOException("no 'Max open files' line in /proc/self/limits");
    }
}
