package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.testkit.SimulatedAcceleratorEngine;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.pkitesting.X509Bundle;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link OffloadConfig#handshakeStepsPerLoopTurn()} with real epoll loops, real BoringSSL handshakes and a simulated
 * 20 ms engine signalling a shared eventfd: a burst of new connections arrives at once on one server loop while an
 * established connection keeps sending. With the bound, reads and resumes over it wait for later loop turns, the
 * established connection's reads are served while handshake steps wait (order evidence: the loop's count of waiting
 * steps when each of its reads arrives), every handshake completes, and the data each burst client sends right after
 * its handshake comes back in order. Without the bound (0, the default) nothing is kept or waits. A read kept for a
 * channel that closes is released with it, and the replay of that channel's step, which finds it closed, costs no
 * budget (counted as skipped).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TlsHandshakeTurnsTest {

    private static final int BURST = 16;
    private static final int MESSAGES = 20;

    private static X509Bundle cert;

    private EventLoopGroup serverGroup;
    private EventLoopGroup clientGroup;
    private SslContext client;
    private SimulatedAcceleratorEngine engine;

    @BeforeAll
    static void createCertificate() throws Exception {
        cert = TlsFixtures.certificate(KeyKind.EC_P256);
    }

    @AfterAll
    static void dropCertificate() {
        cert = null;
    }

    @BeforeEach
    void start() throws Exception {
        serverGroup = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        clientGroup = new MultiThreadIoEventLoopGroup(2, EpollIoHandler.newFactory());
        client = TlsFixtures.insecureTls13Client();
        engine = SimulatedAcceleratorEngine.builder().name("sim-20ms").latency(Duration.ofMillis(20)).ringSize(1024)
                .fdMode(FdMode.SHARED_PER_LOOP)
                .signer(JcaKeySigner.withJdkFallback(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(),
                        CryptoProviders.select(CryptoProviders.Choice.AUTO)))
                .build();
    }

    @AfterEach
    void stop() throws Exception {
        clientGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        serverGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        engine.close();
    }

    /** The server side: the offload handler, then an echo that records what the loop's budget looked like. */
    private static final class Server {
        final Channel channel;
        final Queue<AsyncOffloadHandler> handlers = new ConcurrentLinkedQueue<>();
        final AtomicInteger handshakes = new AtomicInteger();
        final AtomicInteger failures = new AtomicInteger();
        /** For each read of an established connection (handshake done before the burst): steps waiting then. */
        final Queue<Integer> waitingAtEstablishedReads = new ConcurrentLinkedQueue<>();
        volatile Channel established;

        Server(EventLoopGroup group, AsyncSslContext ctx) throws InterruptedException {
            channel = new ServerBootstrap().group(group).channel(EpollServerSocketChannel.class)
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            AsyncOffloadHandler offload = ctx.newOffloadHandler(ch);
                            offload.sslHandler().setHandshakeTimeoutMillis(120_000);
                            handlers.add(offload);
                            ch.pipeline().addLast(offload);
                            offload.sslHandler().handshakeFuture().addListener(f -> {
                                (f.isSuccess() ? handshakes : failures).incrementAndGet();
                            });
                            ch.pipeline().addLast(new ChannelInboundHandlerAdapter() {
                                @Override
                                public void channelRead(ChannelHandlerContext c, Object msg) {
                                    if (c.channel() == established) {
                                        LoopState s = LoopState.peek((IoEventLoop) c.channel().eventLoop());
                                        HandshakeTurns t = s == null ? null : s.turns;
                                        waitingAtEstablishedReads.add(t == null ? 0 : t.waiting());
                                    }
                                    c.writeAndFlush(msg);
                                }
                            });
                        }
                    }).bind("127.0.0.1", 0).sync().channel();
        }

        int port() {
            return ((InetSocketAddress) channel.localAddress()).getPort();
        }
    }

    private Bootstrap clientBootstrap(ChannelInboundHandlerAdapter app) {
        return new Bootstrap().group(clientGroup).channel(EpollSocketChannel.class)
                .option(ChannelOption.TCP_NODELAY, true)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        SslHandler ssl = client.newHandler(ch.alloc());
                        ssl.setHandshakeTimeoutMillis(120_000);
                        ch.pipeline().addLast(ssl, app);
                    }
                });
    }

    @ParameterizedTest(name = "handshakeStepsPerLoopTurn {0}")
    @ValueSource(ints = {1, 0})
    void shouldServeAnEstablishedConnectionBetweenTheStepsOfABurstOfHandshakes(int steps) throws Exception {
        OffloadConfig config = OffloadConfig.builder().notify(OffloadConfig.Notify.FD).handshakeStepsPerLoopTurn(steps)
                .build();
        AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate()).offloadConfig(config)
                .protocols("TLSv1.3").build();
        Server server = new Server(serverGroup, ctx);
        try {
            // The established connection: ping-pong of one byte, for as long as the burst lasts.
            AtomicInteger pongs = new AtomicInteger();
            AtomicReference<Boolean> stopPinging = new AtomicReference<>(false);
            ChannelInboundHandlerAdapter pinger = new ChannelInboundHandlerAdapter() {
                @Override
                public void channelRead(ChannelHandlerContext c, Object msg) {
                    ((ByteBuf) msg).release();
                    pongs.incrementAndGet();
                    if (!stopPinging.get()) {
                        c.writeAndFlush(Unpooled.wrappedBuffer(new byte[] {1}));
                    }
                }
            };
            ChannelFuture ef = clientBootstrap(pinger).connect("127.0.0.1", server.port()).sync();
            Channel est = ef.channel();
            assertTrue(est.pipeline().get(SslHandler.class).handshakeFuture().await(30, TimeUnit.SECONDS));
            Loops.await("the server saw the established handshake", () -> server.handshakes.get() == 1);
            server.established = findServerChannel(server, est);
            est.writeAndFlush(Unpooled.wrappedBuffer(new byte[] {1}));
            Loops.await("the ping-pong runs", () -> pongs.get() > 5);

            // The burst: BURST connections at once; each sends MESSAGES numbered lines right after its handshake.
            List<BurstClient> burst = new ArrayList<>();
            clientGroup.next().submit(() -> {
                for (int i = 0; i < BURST; i++) {
                    BurstClient b = new BurstClient();
                    burst.add(b);
                    clientBootstrap(b).connect("127.0.0.1", server.port());
                }
            }).sync();
            Loops.await("every burst client got its lines back", Duration.ofSeconds(60),
                    () -> burst.stream().allMatch(b -> b.done));
            stopPinging.set(true);
            for (BurstClient b : burst) {
                assertEquals(expectedLines(), b.received.toString(), "echo of one burst client, in order");
            }
            assertEquals(BURST + 1, server.handshakes.get(), "every handshake completed");
            assertEquals(0, server.failures.get(), "no handshake failed");

            Loops.await("no step waits once the burst is done", () -> {
                try {
                    return serverGroup.next().submit(() -> {
                        LoopState s = LoopState.peek((IoEventLoop) serverGroup.next());
                        return s == null || s.turns.waiting() == 0;
                    }).get();
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });
            long[] counts = serverGroup.next().submit(() -> {
                HandshakeTurns t = LoopState.peek((IoEventLoop) serverGroup.next()).turns;
                long[] c = t.counts();
                return new long[] {c[0], c[1], c[2], t.waiting(), c[3]};
            }).get();
            long kept = serverGroup.next().submit(() -> server.handlers.stream()
                    .mapToLong(AsyncOffloadHandler::keptReads).sum()).get();
            int maxWaiting = server.waitingAtEstablishedReads.stream().mapToInt(Integer::intValue).max().orElse(0);
            System.out.printf("steps per turn %d: admitted %d, deferred %d, replayed %d, skipped %d, kept reads %d, "
                            + "established reads %d (most steps waiting at one: %d)%n", steps, counts[0], counts[1],
                    counts[2], counts[4], kept, server.waitingAtEstablishedReads.size(), maxWaiting);
            assertEquals(0, counts[3], "nothing waits once the burst is done");
            if (steps == 0) {
                assertEquals(0, counts[0] + counts[1] + counts[2] + counts[4], "without a bound nothing is counted");
                assertEquals(0, kept, "without a bound no read is kept");
                assertEquals(0, maxWaiting, "without a bound no step ever waits");
            } else {
                assertTrue(counts[1] > 0, "steps over the budget waited for later turns: " + counts[1]);
                assertEquals(counts[1], counts[2] + counts[4], "every step that waited was replayed or skipped");
                assertTrue(kept > 0, "reads of handshaking channels were kept: " + kept);
                // Order evidence: a read of the established connection ran while handshake steps that had arrived
                // before it were still waiting for a later turn.
                assertTrue(maxWaiting > 0, "an established read was served between the burst's handshake steps "
                        + "(steps waiting at each established read: " + server.waitingAtEstablishedReads + ")");
            }
            est.close().sync();
        } finally {
            server.channel.close().sync();
        }
    }

    private static Channel findServerChannel(Server server, Channel clientSide) {
        InetSocketAddress local = (InetSocketAddress) clientSide.localAddress();
        for (AsyncOffloadHandler h : server.handlers) {
            Channel ch = h.sslHandler().handshakeFuture().getNow();
            if (ch != null && ((InetSocketAddress) ch.remoteAddress()).getPort() == local.getPort()) {
                return ch;
            }
        }
        throw new AssertionError("no server channel for " + local);
    }

    private static String expectedLines() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < MESSAGES; i++) {
            sb.append(i).append('\n');
        }
        return sb.toString();
    }

    /** Sends MESSAGES numbered lines, one write each, as soon as its handshake is done; collects the echo. */
    private static final class BurstClient extends ChannelInboundHandlerAdapter {
        final StringBuilder received = new StringBuilder();
        volatile boolean done;

        @Override
        public void userEventTriggered(ChannelHandlerContext c, Object evt) {
            if (evt instanceof io.netty.handler.ssl.SslHandshakeCompletionEvent e && e.isSuccess()) {
                for (int i = 0; i < MESSAGES; i++) {
                    c.writeAndFlush(Unpooled.copiedBuffer(i + "\n", StandardCharsets.US_ASCII));
                }
            }
            c.fireUserEventTriggered(evt);
        }

        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
            ByteBuf b = (ByteBuf) msg;
            received.append(b.toString(StandardCharsets.US_ASCII));
            b.release();
            if (received.length() >= expectedLines().length()) {
                done = true;
                c.close();
            }
        }
    }

    @Test
    void shouldReleaseAReadKeptForAChannelThatCloses() throws Exception {
        OffloadConfig config = OffloadConfig.builder().handshakeStepsPerLoopTurn(1).build();
        AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate()).offloadConfig(config)
                .protocols("TLSv1.3").build();
        Server server = new Server(serverGroup, ctx);
        try {
            // A plain TCP peer that sends nothing: its server channel is handshaking and has read nothing yet.
            Channel peer = new Bootstrap().group(clientGroup).channel(EpollSocketChannel.class)
                    .handler(new ChannelInboundHandlerAdapter()).connect("127.0.0.1", server.port()).sync().channel();
            Loops.await("the server accepted the peer", () -> !server.handlers.isEmpty());
            AsyncOffloadHandler handler = server.handlers.peek();
            ByteBuf kept = Unpooled.copiedBuffer("a read over the budget", StandardCharsets.US_ASCII);
            long[] result = serverGroup.next().submit(() -> {
                HandshakeTurns t = LoopState.of((IoEventLoop) serverGroup.next()).turns;
                // Use this turn's budget of 1, then deliver a read of the handshaking channel: it must be kept.
                assertTrue(t.admit(1), "the turn's first step is admitted");
                Channel ch = handler.channel();
                assertTrue(!handler.sslHandler().handshakeFuture().isDone(), "the channel is handshaking");
                ch.pipeline().fireChannelRead(kept);
                long keptNow = handler.keptReads();
                int refCntKept = kept.refCnt();
                ch.close();
                return new long[] {keptNow, refCntKept};
            }).get();
            assertEquals(1, result[0], "the read over the budget was kept");
            assertEquals(1, result[1], "a kept read is still owned (not released, not passed on)");
            Loops.await("closing the channel released the kept read", () -> kept.refCnt() == 0);
            Loops.await("nothing waits once the closed channel's step is replayed", () -> {
                try {
                    return serverGroup.next().submit(() ->
                            LoopState.peek((IoEventLoop) serverGroup.next()).turns.waiting()).get() == 0;
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });
            long[] counts = serverGroup.next().submit(() ->
                    LoopState.peek((IoEventLoop) serverGroup.next()).turns.counts()).get();
            // The replay of the closed channel's step found nothing to do: it cost no budget.
            assertEquals(1, counts[1], "deferred: the kept read's step");
            assertEquals(0, counts[2], "replayed with work done: " + java.util.Arrays.toString(counts));
            assertEquals(1, counts[3], "skipped (the channel had closed): " + java.util.Arrays.toString(counts));
            peer.close().sync();
        } finally {
            server.channel.close().sync();
        }
    }
}
