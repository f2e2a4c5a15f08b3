package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
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

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@link OffloadConfig#handshakeStepsPerLoopTurn()} and wait-fd resumes, with a real epoll loop, real BoringSSL
 * handshakes and an engine that holds every signature until the test lets them all complete at once: the completions
 * of several paused handshakes, signalled before one I/O pass, resume one per turn with a budget of 1 (the others wait
 * for later turns), every handshake completes, and no wake-up is counted as spurious (per-connection and shared
 * eventfds). While the handshakes are paused, a read of a paused channel takes no step of the budget: SslHandler only
 * buffers it, so it is passed on even when the turn's budget is used up.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TlsHandshakeTurnsResumeTest {

    private static final int HANDSHAKES = 6;

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = FdMode.class, names = {"PER_CTX", "SHARED_PER_LOOP"})
    void shouldDeferWaitFdResumesOverTheBudgetWithoutSpuriousWakeUps(FdMode fdMode) throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.EC_P256);
        SslContext client = TlsFixtures.insecureTls13Client();
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        EventLoopGroup serverGroup = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        EventLoopGroup clientGroup = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        IoEventLoop loop = (IoEventLoop) serverGroup.next();
        try (FaultInjectingEngine engine = FaultInjectingEngine.builder().name("held").hangRate(1.0).fdMode(fdMode)
                .signer(new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(), null))
                .build()) {
            OffloadConfig config = OffloadConfig.builder().notify(OffloadConfig.Notify.FD).handshakeStepsPerLoopTurn(1)
                    .operationTimeout(Duration.ofSeconds(60)).metrics(new MicrometerOffloadMetrics(meters)).build();
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate()).offloadConfig(config)
                    .protocols("TLSv1.3").build();
            Queue<AsyncOffloadHandler> handlers = new ConcurrentLinkedQueue<>();
            AtomicInteger handshakes = new AtomicInteger();
            Channel server = new ServerBootstrap().group(serverGroup).channel(EpollServerSocketChannel.class)
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            AsyncOffloadHandler offload = ctx.newOffloadHandler(ch);
                            handlers.add(offload);
                            ch.pipeline().addLast(offload);
                            offload.sslHandler().handshakeFuture().addListener(f -> {
                                if (f.isSuccess()) {
                                    handshakes.incrementAndGet();
                                }
                            });
                        }
                    }).bind("127.0.0.1", 0).sync().channel();
            List<Channel> clients = new ArrayList<>();
            try {
                for (int i = 0; i < HANDSHAKES; i++) {
                    clients.add(new Bootstrap().group(clientGroup).channel(EpollSocketChannel.class)
                            .handler(new ChannelInitializer<SocketChannel>() {
                                @Override
                                protected void initChannel(SocketChannel ch) {
                                    ch.pipeline().addLast(client.newHandler(ch.alloc()),
                                            new ChannelInboundHandlerAdapter());
                                }
                            }).connect(server.localAddress()).sync().channel());
                }
                Loops.await("every handshake paused at its signature", Duration.ofSeconds(30),
                        () -> engine.inFlight() == HANDSHAKES);

                // A read of a paused channel, with this turn's budget used up: passed on, not kept, no step taken.
                long[] paused = Loops.onLoop(loop, () -> {
                    HandshakeTurns t = LoopState.peek(loop).turns;
                    t.admit(1);
                    long[] before = t.counts();
                    long keptBefore = handlers.stream().mapToLong(AsyncOffloadHandler::keptReads).sum();
                    long holding = handlers.stream().filter(AsyncOffloadHandler::isHoldingReads).count();
                    for (AsyncOffloadHandler h : handlers) {
                        ByteBuf empty = Unpooled.buffer(0); // SslHandler buffers it; nothing corrupts the handshake
                        h.channel().pipeline().fireChannelRead(empty).fireChannelReadComplete();
                    }
                    long[] after = t.counts();
                    long keptAfter = handlers.stream().mapToLong(AsyncOffloadHandler::keptReads).sum();
                    return new long[] {holding, keptAfter - keptBefore, after[0] - before[0], after[1] - before[1]};
                });
                assertEquals(HANDSHAKES, paused[0], "every channel holds its reads while its signature waits");
                assertEquals(0, paused[1], "a read of a paused channel was kept over the budget");
                assertEquals(0, paused[2] + paused[3], "a read of a paused channel took a step");

                // Every signature completes, and is signalled, before the loop's next I/O pass.
                assertEquals(HANDSHAKES, (int) Loops.onLoop(loop, engine::completeHung));
                Loops.await("every handshake completed", Duration.ofSeconds(30),
                        () -> handshakes.get() == HANDSHAKES);
                for (Channel c : clients) {
                    assertTrue(c.pipeline().get(SslHandler.class).handshakeFuture().await(30, TimeUnit.SECONDS));
                }
                Loops.await("no step waits", () -> {
                    try {
                        return Loops.onLoop(loop, () -> LoopState.peek(loop).turns.waiting()) == 0;
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                });
                long[] seen = Loops.onLoop(loop, () -> {
                    LoopState s = LoopState.peek(loop);
                    long[] c = s.turns.counts();
                    return new long[] {s.registry.deferredResumes(), s.registry.spuriousWakeups(), c[1], c[2], c[3]};
                });
                System.out.printf("%s: deferred resumes %d, spurious %d, turns deferred %d replayed %d skipped %d%n",
                        fdMode, seen[0], seen[1], seen[2], seen[3], seen[4]);
                // The first completion of the pass resumed at once; the others each waited for a later turn.
                assertEquals(HANDSHAKES - 1, seen[0], "resumes deferred over the budget of 1: " + Arrays.toString(seen));
                assertEquals(0, seen[1], "the registry counted a spurious wake-up");
                assertEquals(0.0, count(meters, "wakeups.spurious"), "the metrics counted a spurious wake-up");
                assertEquals(HANDSHAKES, count(meters, "jobs.resumed"), "every job resumed once");
                assertEquals(seen[2], seen[3] + seen[4], "every deferred step was replayed or skipped");
            } finally {
                for (Channel c : clients) {
                    c.close().sync();
                }
                server.close().sync();
            }
        } finally {
            clientGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
            serverGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        }
    }

    private static double count(SimpleMeterRegistry meters, String name) {
        return meters.find(MicrometerOffloadMetrics.PREFIX + name).counters().stream().mapToDouble(Counter::count)
                .sum();
    }
}
