package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.testkit.FaultInjectingEngine;
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
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.pkitesting.X509Bundle;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * {@link KeptReads} on a real epoll loop with real BoringSSL handshakes and real TLS clients, budget 1. A tap in front
 * of the offload handler holds the client's second flight (its Finished and the data it sends right after) until
 * enough has arrived, uses the loop's budget as another handshake would, and lets it all through at once: the offload
 * handler keeps it for a later turn, deterministically. Then: more than {@link ReadHold#BUDGET} kept bytes suspend
 * autoRead, which the replay restores before it passes the reads on (so a handler that turns autoRead off while it
 * reads them keeps it off); an input shutdown (half-closure allowed) waits behind the kept reads; removing the offload
 * handler passes what it kept on at once, and its step's later replay is skipped at no cost.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TlsKeptReadsTest {

    private static final int PAYLOAD = 64 * 1024;
    /** The tap lets the held reads through once this much has arrived: well over the kept-bytes bound. */
    private static final int HOLD_UNTIL = 2 * ReadHold.BUDGET;

    private static X509Bundle cert;

    private EventLoopGroup serverGroup;
    private EventLoopGroup clientGroup;
    private SslContext client;
    private FaultInjectingEngine engine;

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
        clientGroup = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        client = TlsFixtures.insecureTls13Client();
        engine = FaultInjectingEngine.builder().name("kept-reads").latency(Duration.ofMillis(1))
                .fdMode(FdMode.SHARED_PER_LOOP)
                .signer(new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(), null)).build();
    }

    @AfterEach
    void stop() throws Exception {
        clientGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        serverGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        engine.close();
    }

    /** When the tap lets the held reads through. */
    private enum Release {
        /** Once {@link #HOLD_UNTIL} bytes are held. */
        AT_THRESHOLD,
        /** At the input shutdown event (the client shut its output down after its data). */
        AT_INPUT_SHUTDOWN,
        /** Once {@link #HOLD_UNTIL} bytes are held; then the offload handler is removed from the pipeline. */
        AT_THRESHOLD_THEN_REMOVE
    }

    /** What the offload handler had just after the tap let the held reads through. Loop thread writes, test reads. */
    private record AtRelease(long heldBytes, boolean keeping, boolean keptSuspendedAutoRead, boolean autoRead) {
    }

    /** Holds the client's reads once the server's key operation has started; lets them through over budget at once. */
    private static final class Tap extends ChannelInboundHandlerAdapter {
        private final AsyncOffloadHandler offload;
        private final Release release;
        private final List<ByteBuf> held = new ArrayList<>();
        private long heldBytes;
        private boolean released;
        volatile AtRelease atRelease;

        Tap(AsyncOffloadHandler offload, Release release) {
            this.offload = offload;
            this.release = release;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (released || offload.connection() == null) {
                ctx.fireChannelRead(msg); // the ClientHello (the key operation starts with it), or after the release
                return;
            }
            ByteBuf b = (ByteBuf) msg;
            held.add(b);
            heldBytes += b.readableBytes();
            if (release != Release.AT_INPUT_SHUTDOWN && heldBytes >= HOLD_UNTIL) {
                letThrough(ctx);
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (!released && release == Release.AT_INPUT_SHUTDOWN && evt instanceof ChannelInputShutdownEvent) {
                letThrough(ctx);
            }
            ctx.fireUserEventTriggered(evt);
        }

        private void letThrough(ChannelHandlerContext ctx) {
            released = true;
            HandshakeTurns turns = LoopState.peek((IoEventLoop) ctx.channel().eventLoop()).turns;
            while (turns.admit(1)) {
                // another handshake has used this turn's budget
            }
            for (ByteBuf b : held) {
                ctx.fireChannelRead(b);
            }
            held.clear();
            KeptReads k = offload.keptReadsState();
            atRelease = new AtRelease(heldBytes, k.isKeeping(), k.isAutoReadSuspended(),
                    ctx.channel().config().isAutoRead());
            if (release == Release.AT_THRESHOLD_THEN_REMOVE) {
                ctx.pipeline().remove(offload);
            }
        }

        @Override
        public void handlerRemoved(ChannelHandlerContext ctx) {
            held.forEach(ByteBuf::release);
            held.clear();
        }
    }

    /** The server's application: checks the byte pattern, notes the input shutdown, optionally pushes back. */
    private static final class App extends ChannelInboundHandlerAdapter {
        private final boolean backpressure;
        volatile long received;
        volatile boolean patternBroken;
        volatile long receivedAtInputShutdown = -1;
        /** autoRead once the read (the replay) that brought the first data has ended; null until then. */
        volatile Boolean autoReadAfterFirstData;
        private boolean checkQueued;

        App(boolean backpressure) {
            this.backpressure = backpressure;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf b = (ByteBuf) msg;
            long n = received;
            for (int i = b.readerIndex(); i < b.writerIndex(); i++, n++) {
                if (b.getByte(i) != (byte) (n % 251)) {
                    patternBroken = true;
                }
            }
            b.release();
            if (received == 0 && backpressure) {
                ctx.channel().config().setAutoRead(false); // the application pushes back right after the handshake
            }
            received = n;
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            if (received > 0 && !checkQueued) {
                checkQueued = true;
                // Runs after the task that passed the data on has returned, whatever that task does after this.
                ctx.executor().execute(() -> {
                    autoReadAfterFirstData = ctx.channel().config().isAutoRead();
                    ctx.channel().config().setAutoRead(true);
                });
            }
            ctx.fireChannelReadComplete();
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                receivedAtInputShutdown = received;
            }
            ctx.fireUserEventTriggered(evt);
        }
    }

    private record Run(Tap tap, App app, AsyncOffloadHandler offload, Channel clientChannel) {
    }

    /** A server with the tap, a client that sends {@code payload} pattern bytes right after its handshake. */
    private Run run(Release release, boolean backpressure, int payload) throws Exception {
        OffloadConfig config = OffloadConfig.builder().notify(OffloadConfig.Notify.FD).handshakeStepsPerLoopTurn(1)
                .build();
        AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate()).offloadConfig(config)
                .protocols("TLSv1.3").build();
        Tap[] tap = new Tap[1];
        App app = new App(backpressure);
        AsyncOffloadHandler[] offload = new AsyncOffloadHandler[1];
        Channel server = new ServerBootstrap().group(serverGroup).channel(EpollServerSocketChannel.class)
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, release == Release.AT_INPUT_SHUTDOWN)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        offload[0] = ctx.newOffloadHandler(ch);
                        tap[0] = new Tap(offload[0], release);
                        ch.pipeline().addLast(tap[0], offload[0], app);
                    }
                }).bind("127.0.0.1", 0).sync().channel();
        try {
            Channel c = new Bootstrap().group(clientGroup).channel(EpollSocketChannel.class)
                    .handler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            ch.pipeline().addLast(client.newHandler(ch.alloc()), new ChannelInboundHandlerAdapter() {
                                @Override
                                public void userEventTriggered(ChannelHandlerContext hc, Object evt) {
                                    if (evt instanceof SslHandshakeCompletionEvent e && e.isSuccess()) {
                                        send(hc, payload, release == Release.AT_INPUT_SHUTDOWN);
                                    }
                                    hc.fireUserEventTriggered(evt);
                                }
                            });
                        }
                    }).connect(server.localAddress()).sync().channel();
            Loops.await("the server received the client's data", Duration.ofSeconds(30),
                    () -> app.received == payload && app.autoReadAfterFirstData != null);
            assertFalse(app.patternBroken, "the data arrived in order");
            return new Run(tap[0], app, offload[0], c);
        } finally {
            server.close().sync();
        }
    }

    private static void send(ChannelHandlerContext c, int payload, boolean thenShutdownOutput) {
        ChannelFuture last = null;
        for (int off = 0; off < payload; off += 4096) {
            ByteBuf b = Unpooled.buffer(Math.min(4096, payload - off));
            for (int i = off; i < off + b.capacity(); i++) {
                b.writeByte(i % 251);
            }
            last = c.write(b);
        }
        c.flush();
        if (thenShutdownOutput) {
            // The FIN follows the data once its last record is in the socket (the server sees an input shutdown).
            last.addListener(f -> ((DuplexChannel) c.channel()).shutdownOutput());
        }
    }

    private long[] counts() throws Exception {
        return serverGroup.next().submit(() -> {
            HandshakeTurns t = LoopState.peek((IoEventLoop) serverGroup.next()).turns;
            long[] c = t.counts();
            return new long[] {c[0], c[1], c[2], c[3], t.waiting()};
        }).get();
    }

    @Test
    void shouldSuspendAutoReadOverTheBoundAndRestoreItAtTheReplay() throws Exception {
        Run r = run(Release.AT_THRESHOLD, false, PAYLOAD);
        AtRelease at = r.tap.atRelease;
        assertTrue(at.heldBytes >= ReadHold.BUDGET, "the tap let through " + at.heldBytes + " bytes");
        assertTrue(at.keeping, "the offload handler kept the client's second flight (over budget)");
        assertTrue(at.keptSuspendedAutoRead, "over ReadHold.BUDGET kept bytes, autoRead is suspended");
        assertFalse(at.autoRead, "autoRead is off while the reads are kept");
        assertTrue(r.app.autoReadAfterFirstData, "the replay turned autoRead back on");
        assertTrue(r.offload.sslHandler().handshakeFuture().isSuccess());
        r.clientChannel.close().sync();
    }

    @Test
    void shouldNotOverrideAnApplicationThatTurnsAutoReadOffDuringTheReplay() throws Exception {
        Run r = run(Release.AT_THRESHOLD, true, PAYLOAD);
        assertTrue(r.tap.atRelease.keptSuspendedAutoRead, "autoRead was suspended by the kept reads");
        // The application turned autoRead off at its first data, inside the replay: the replay leaves it off (the
        // application itself turns it on again afterwards, which is how the rest of the data arrived).
        assertFalse(r.app.autoReadAfterFirstData, "the replay overrode the application's autoRead(false)");
        r.clientChannel.close().sync();
    }

    @Test
    void shouldKeepAnInputShutdownBehindTheKeptReads() throws Exception {
        int payload = 3000;
        Run r = run(Release.AT_INPUT_SHUTDOWN, false, payload);
        assertTrue(r.tap.atRelease.keeping, "the offload handler kept the client's second flight (over budget)");
        Loops.await("the input shutdown reached the application", () -> r.app.receivedAtInputShutdown >= 0);
        assertEquals(payload, r.app.receivedAtInputShutdown, "the input shutdown reached the application after "
                + "all the data that was read before it");
        r.clientChannel.close().sync();
    }

    @Test
    void shouldPassKeptReadsOnWhenTheHandlerIsRemovedAndSkipTheirReplay() throws Exception {
        Run r = run(Release.AT_THRESHOLD_THEN_REMOVE, false, PAYLOAD);
        assertTrue(r.tap.atRelease.keeping, "the offload handler kept the client's second flight (over budget)");
        assertTrue(r.tap.atRelease.keptSuspendedAutoRead, "autoRead was suspended by the kept reads");
        assertTrue(r.app.autoReadAfterFirstData, "passing the kept reads on restored autoRead");
        assertTrue(r.offload.sslHandler().handshakeFuture().isSuccess(), "the handshake completed on the kept reads");
        Loops.await("no step waits", () -> {
            try {
                return counts()[4] == 0;
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        long[] after = counts();
        assertTrue(after[3] >= 1, "the removed handler's step was skipped when replayed (counts admitted, deferred, "
                + "replayed, skipped, waiting: " + Arrays.toString(after) + ")");
        assertEquals(after[1], after[2] + after[3], "every deferred step was replayed or skipped");
        r.clientChannel.close().sync();
    }
}
