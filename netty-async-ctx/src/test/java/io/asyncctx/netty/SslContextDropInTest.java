package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsFixtures.ProcessResult;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.DefaultEventLoopGroup;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.local.LocalAddress;
import io.netty.channel.local.LocalChannel;
import io.netty.channel.local.LocalServerChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.pkitesting.X509Bundle;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link AsyncSslContext} as the {@link SslContext} that frameworks are handed: the handler its {@code newHandler}
 * makes binds itself; an engine from {@code newEngine} in a stock {@link SslHandler} (gRPC-Java's way) completes its
 * handshakes offloaded and unbound; a loop that is not an {@code IoEventLoop} offloads unbound and says so once; an
 * unbound engine that its handler frees while its operation is out is never called back. Real BoringSSL handshakes
 * with {@code openssl s_client} and Netty clients.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class SslContextDropInTest {

    private static final int HANDSHAKES = 4;

    @Test
    void shouldBindTheHandlerThatNewHandlerMakesWhenItIsAdded() throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.RSA);
        try (SoftwareEngine engine = TlsFixtures.softwareEngine(cert)) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate()).build();
            SslContext asNetty = ctx; // no cast, no accessor: it is one
            Queue<List<Class<?>>> pipelines = new ConcurrentLinkedQueue<>();
            try (EpollServer server = new EpollServer(ch -> asNetty.newHandler(ch.alloc()), pipelines)) {
                for (int i = 0; i < HANDSHAKES; i++) {
                    ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                    assertTrue(r.output().contains("TLSv1.3"), r.output());
                }
                server.awaitHandshakes(HANDSHAKES);
                assertEquals(HANDSHAKES, ctx.offloadedOperations());
                assertEquals(0, ctx.detachedOperations(), "every channel bound itself");
                for (List<Class<?>> names : pipelines) {
                    int offload = names.indexOf(AsyncOffloadHandler.class);
                    int ssl = names.indexOf(OffloadingSslHandler.class);
                    assertTrue(offload >= 0 && ssl == offload + 1, () -> "companion right before SslHandler: "
                            + names);
                }
                TlsEngineFailureTest.awaitCondition(() -> ctx.boundChannels() == 0);
                assertEquals(0, ctx.operationsInFlight());
            }
        }
    }

    @Test
    void shouldTakeTheCompanionOutWhenTheSslHandlerIsRemoved() throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.EC_P256);
        try (SoftwareEngine engine = TlsFixtures.softwareEngine(cert)) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate()).build();
            Queue<List<Class<?>>> after = new ConcurrentLinkedQueue<>();
            // A framework that ends TLS on an open channel (STARTTLS the other way, a protocol switch).
            try (EpollServer server = new EpollServer(ch -> {
                SslHandler ssl = ctx.newHandler(ch.alloc());
                ssl.handshakeFuture().addListener(f -> {
                    if (f.isSuccess()) {
                        ch.pipeline().remove(ssl);
                        // Removed inside its own decode: Netty finishes the removal after the decode returns.
                        ch.eventLoop().execute(() -> {
                            List<Class<?>> classes = new ArrayList<>();
                            ch.pipeline().forEach(e -> classes.add(e.getValue().getClass()));
                            after.add(classes);
                        });
                    }
                });
                return ssl;
            }, null)) {
                ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                assertTrue(r.output().contains("TLSv1.3"), r.output());
                TlsEngineFailureTest.awaitCondition(() -> after.size() == 1);
                assertTrue(!after.peek().contains(AsyncOffloadHandler.class), () -> "companion left: " + after);
                TlsEngineFailureTest.awaitCondition(() -> ctx.boundChannels() == 0);
            }
        }
    }

    @Test
    void shouldOffloadAnEngineWrappedInAStockSslHandler() throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.EC_P256);
        try (SoftwareEngine engine = TlsFixtures.softwareEngine(cert)) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate()).build();
            // What gRPC-Java's ServerTlsHandler does: its own SslHandler around newEngine.
            try (EpollServer server = new EpollServer(ch -> new SslHandler(ctx.newEngine(ch.alloc()), false),
                    null)) {
                for (int i = 0; i < HANDSHAKES; i++) {
                    ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                    assertTrue(r.output().contains("TLSv1.3"), r.output());
                }
                server.awaitHandshakes(HANDSHAKES);
                assertEquals(0, server.failures.get());
                assertEquals(HANDSHAKES, ctx.offloadedOperations());
                assertEquals(HANDSHAKES, ctx.detachedOperations(), "no channel to bind: every operation detached");
                assertEquals(0, ctx.inlineOperations());
                assertEquals(0, ctx.boundChannels());
                TlsEngineFailureTest.awaitCondition(() -> ctx.operationsInFlight() == 0);
            }
        }
        // The detached loop's thread does not outlive its work.
        TlsEngineFailureTest.awaitCondition(() -> !DetachedOffload.isRunning());
        TlsEngineFailureTest.awaitCondition(() -> Thread.getAllStackTraces().keySet().stream()
                .noneMatch(t -> t.getName().startsWith("async-ctx-detached")));
    }

    @Test
    void shouldNeverCallBackAnUnboundEngineThatItsHandlerFreed() throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.EC_P256);
        try (FaultInjectingEngine engine = FaultInjectingEngine.builder().name("hanging")
                .signer(new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(), null))
                .hangRate(1).build()) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate()).build();
            Queue<SslHandler> handlers = new ConcurrentLinkedQueue<>();
            try (EpollServer server = new EpollServer(ch -> {
                SslHandler h = new SslHandler(ctx.newEngine(ch.alloc()), false);
                handlers.add(h);
                return h;
            }, null); SslContextClient client = new SslContextClient()) {
                Channel c = client.connect(server.port());
                TlsEngineFailureTest.awaitCondition(() -> engine.hung() == 1);
                assertEquals(1, ctx.operationsInFlight());
                c.close().sync();
                SslHandler serverHandler = handlers.peek();
                assertNotNull(serverHandler);
                // The server's handler frees its engine when the channel goes.
                io.netty.handler.ssl.ReferenceCountedOpenSslEngine sslEngine = assertInstanceOf(
                        io.netty.handler.ssl.ReferenceCountedOpenSslEngine.class, serverHandler.engine());
                TlsEngineFailureTest.awaitCondition(() -> sslEngine.sslPointer() == 0);
                // No channel tells the detached path that the peer left: it finds the freed engine and cancels the
                // operation (as the bound path cancels on close), or, if the engine answers first, drops the result
                // rather than hand it to the freed SSL (a use after free, silent or a crash). One of the two, once.
                long cancelledBefore = DetachedOffload.cancelledOperations();
                long droppedBefore = DetachedOffload.droppedResults();
                int answered = engine.completeHung();
                TlsEngineFailureTest.awaitCondition(() -> ctx.operationsInFlight() == 0);
                long cancelled = DetachedOffload.cancelledOperations() - cancelledBefore;
                long dropped = DetachedOffload.droppedResults() - droppedBefore;
                assertEquals(1, cancelled + dropped, () -> "cancelled " + cancelled + ", dropped " + dropped);
                assertEquals(cancelled == 1 ? 0 : 1, answered);
                assertEquals(1, ctx.detachedOperations());
                assertEquals(0, server.handshakes.get());
            }
        }
    }

    @Test
    void shouldCancelADetachedOperationWhoseEngineWasFreed() throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.EC_P256);
        try (FaultInjectingEngine engine = FaultInjectingEngine.builder().name("hanging")
                .signer(new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(), null))
                .hangRate(1).build()) {
            // A deadline far beyond the test's: only the cancel can end the operation in time.
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                    .offloadConfig(OffloadConfig.builder().operationTimeout(java.time.Duration.ofMinutes(10)).build())
                    .build();
            try (EpollServer server = new EpollServer(ch -> new SslHandler(ctx.newEngine(ch.alloc()), false), null);
                 SslContextClient client = new SslContextClient()) {
                Channel c = client.connect(server.port());
                TlsEngineFailureTest.awaitCondition(() -> engine.hung() == 1);
                long cancelledBefore = DetachedOffload.cancelledOperations();
                c.close().sync();
                TlsEngineFailureTest.awaitCondition(() -> ctx.operationsInFlight() == 0);
                assertEquals(cancelledBefore + 1, DetachedOffload.cancelledOperations());
                TlsEngineFailureTest.awaitCondition(() -> engine.cancelled() == 1);
                assertEquals(0, engine.completeHung(), "nothing left hanging in the engine");
            }
        }
    }

    @Test
    void shouldOffloadUnboundOnALoopThatIsNotAnIoEventLoopAndSaySoOnce() throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.RSA);
        Logger log = Logger.getLogger(AsyncSslContext.class.getName());
        List<LogRecord> records = new ArrayList<>();
        Handler capture = new Handler() {
            @Override
            public synchronized void publish(LogRecord record) {
                records.add(record);
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        log.addHandler(capture);
        EventLoopGroup group = new DefaultEventLoopGroup(2);
        SslContext client = TlsFixtures.insecureTls13Client();
        try (SoftwareEngine engine = TlsFixtures.softwareEngine(cert)) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate()).build();
            AtomicInteger serverHandshakes = new AtomicInteger();
            LocalAddress address = new LocalAddress("drop-in-" + System.nanoTime());
            Channel server = new ServerBootstrap().group(group).channel(LocalServerChannel.class)
                    .childHandler(new ChannelInitializer<LocalChannel>() {
                        @Override
                        protected void initChannel(LocalChannel ch) {
                            SslHandler ssl = ctx.newHandler(ch.alloc());
                            ch.pipeline().addLast(ssl);
                            ssl.handshakeFuture().addListener(f -> {
                                if (f.isSuccess()) {
                                    serverHandshakes.incrementAndGet();
                                }
                            });
                        }
                    }).bind(address).sync().channel();
            try {
                for (int i = 0; i < HANDSHAKES; i++) {
                    SslHandler[] ssl = new SslHandler[1];
                    Channel c = new Bootstrap().group(group).channel(LocalChannel.class)
                            .handler(new ChannelInitializer<LocalChannel>() {
                                @Override
                                protected void initChannel(LocalChannel ch) {
                                    ssl[0] = client.newHandler(ch.alloc());
                                    ch.pipeline().addLast(ssl[0]);
                                }
                            }).connect(address).sync().channel();
                    assertTrue(ssl[0].handshakeFuture().await(30, TimeUnit.SECONDS), "handshake timed out");
                    assertTrue(ssl[0].handshakeFuture().isSuccess(), () -> "" + ssl[0].handshakeFuture().cause());
                    c.close().sync();
                }
                TlsEngineFailureTest.awaitCondition(() -> serverHandshakes.get() == HANDSHAKES);
                assertEquals(HANDSHAKES, ctx.detachedOperations());
                assertEquals(0, ctx.boundChannels());
                long warnings;
                synchronized (capture) {
                    warnings = records.stream().filter(r -> r.getLevel() == Level.WARNING
                            && r.getMessage().contains("not an IoEventLoop")).count();
                }
                assertEquals(1, warnings, "said once per context, not per connection");
            } finally {
                server.close().sync();
            }
        } finally {
            log.removeHandler(capture);
            io.netty.util.ReferenceCountUtil.release(client);
            group.shutdownGracefully(0, 0, TimeUnit.SECONDS).sync();
        }
    }

    /** An epoll server whose child pipelines start with the handler {@code tls} makes; counts handshakes. */
    private static final class EpollServer implements AutoCloseable {
        final AtomicInteger handshakes = new AtomicInteger();
        final AtomicInteger failures = new AtomicInteger();
        private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        private final Channel channel;

        EpollServer(Function<Channel, ChannelHandler> tls, Queue<List<Class<?>>> pipelines) throws Exception {
            channel = new ServerBootstrap().group(group).channel(EpollServerSocketChannel.class)
                    .childHandler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            ch.pipeline().addLast(tls.apply(ch));
                            // The request that s_client sends after its handshake ends the connection.
                            ch.pipeline().addLast(new io.netty.channel.ChannelInboundHandlerAdapter() {
                                @Override
                                public void channelRead(io.netty.channel.ChannelHandlerContext c, Object msg) {
                                    io.netty.util.ReferenceCountUtil.release(msg);
                                    c.close();
                                }
                            });
                            SslHandler ssl = ch.pipeline().get(SslHandler.class);
                            ssl.handshakeFuture().addListener(f -> {
                                if (f.isSuccess()) {
                                    if (pipelines != null) {
                                        List<Class<?>> classes = new ArrayList<>();
                                        ch.pipeline().forEach(e -> classes.add(e.getValue().getClass()));
                                        pipelines.add(classes);
                                    }
                                    handshakes.incrementAndGet();
                                } else {
                                    failures.incrementAndGet();
                                }
                            });
                        }
                    }).bind("127.0.0.1", 0).sync().channel();
        }

        int port() {
            return ((InetSocketAddress) channel.localAddress()).getPort();
        }

        void awaitHandshakes(int n) throws InterruptedException {
            TlsEngineFailureTest.awaitCondition(() -> handshakes.get() + failures.get() >= n);
            assertEquals(n, handshakes.get(), "handshakes that succeeded");
        }

        @Override
        public void close() throws InterruptedException {
            channel.close().sync();
            group.shutdownGracefully(0, 0, TimeUnit.SECONDS).sync();
        }
    }

    /** A Netty TLS 1.3 client that connects and leaves its handshake to run. */
    private static final class SslContextClient implements AutoCloseable {
        private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        private final SslContext client = TlsFixtures.insecureTls13Client();

        SslContextClient() throws Exception {
        }

        Channel connect(int port) throws InterruptedException {
            return new Bootstrap().group(group).channel(EpollSocketChannel.class)
                    .handler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            ch.pipeline().addLast(client.newHandler(ch.alloc()));
                        }
                    }).connect("127.0.0.1", port).sync().channel();
        }

        @Override
        public void close() throws InterruptedException {
            group.shutdownGracefully(0, 0, TimeUnit.SECONDS).sync();
            io.netty.util.ReferenceCountUtil.release(client);
        }
    }
}
