package io.asyncctx.quic;

import static io.asyncctx.quic.QuicOffloadIntegrationTest.awaitTrue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.SignatureScheme;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.quic.QuicOffloadIntegrationTest.KeyKind;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDatagramChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioDatagramChannel;
import io.netty.handler.codec.http3.Http3;
import io.netty.handler.codec.http3.Http3ServerConnectionHandler;
import io.netty.handler.codec.quic.InsecureQuicTokenHandler;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicSslContext;
import io.netty.handler.codec.quic.QuicSslEngine;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;

import java.net.InetSocketAddress;
import java.security.Signature;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The life of a QUIC connection's offload binding against Netty's real QUIC codec (quiche and BoringSSL) on an epoll
 * loop: a channel the codec gives up before registering it is unbound all the same, and a task batch re-run after a
 * paused key operation runs as the executor's current batch.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class QuicBindingLifecycleTest {

    private MultiThreadIoEventLoopGroup serverGroup;
    private MultiThreadIoEventLoopGroup clientGroup;
    private X509Bundle cert;

    @BeforeEach
    void setUp() throws Exception {
        serverGroup = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        clientGroup = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        cert = QuicOffloadIntegrationTest.certificate(KeyKind.EC_P256);
    }

    @AfterEach
    void tearDown() throws Exception {
        clientGroup.shutdownGracefully(0, 5, TimeUnit.SECONDS).sync();
        serverGroup.shutdownGracefully(0, 5, TimeUnit.SECONDS).sync();
    }

    private QuicAsyncSslContext context(AsyncEngine engine) throws javax.net.ssl.SSLException {
        return QuicAsyncSslContextBuilder.forServer(engine, cert.getCertificatePath())
                .applicationProtocols(Http3.supportedApplicationProtocols()).build();
    }

    /** An HTTP/3 server on 127.0.0.1:0 whose codec gets its engines from {@code provider}. */
    private Channel server(QuicAsyncSslContext ctx, Function<QuicChannel, QuicSslEngine> provider,
                           CompletableFuture<QuicChannel> accepted) throws InterruptedException {
        ChannelHandler codec = ctx.configure(Http3.newQuicServerCodecBuilder()).sslEngineProvider(provider)
                .maxIdleTimeout(30_000, TimeUnit.MILLISECONDS).initialMaxData(1 << 20)
                .initialMaxStreamDataBidirectionalLocal(1 << 16).initialMaxStreamDataBidirectionalRemote(1 << 16)
                .initialMaxStreamsBidirectional(16).tokenHandler(InsecureQuicTokenHandler.INSTANCE)
                .handler(new ChannelInitializer<QuicChannel>() {
                    @Override
                    protected void initChannel(QuicChannel ch) {
                        ch.pipeline().addLast(new Http3ServerConnectionHandler(
                                new ChannelInitializer<QuicStreamChannel>() {
                                    @Override
                                    protected void initChannel(QuicStreamChannel stream) {
                                        stream.close();
                                    }
                                }));
                        accepted.complete(ch);
                    }
                }).build();
        return new Bootstrap().group(serverGroup).channel(EpollDatagramChannel.class).handler(codec)
                .bind(new InetSocketAddress("127.0.0.1", 0)).sync().channel();
    }

    @Test
    void shouldUnbindAChannelThatTheCodecClosedForciblyBeforeRegistering() throws Exception {
        try (SoftwareEngine engine = QuicOffloadIntegrationTest.softwareEngine(cert)) {
            QuicAsyncSslContext ctx = context(engine);
            QuicSslContext clientCtx = Http3Peers.clientContext(cert.getRootCertificate());
            CompletableFuture<QuicChannel> provided = new CompletableFuture<>();
            AtomicInteger providerCalls = new AtomicInteger();
            // The context's provider binds the channel; the engine handed to the codec is a client engine, which
            // Netty's server codec refuses with closeForcibly() (as it does when quiche_conn_new_with_tls fails):
            // the channel is closed without ever being registered, and its close future never completes. The client
            // retransmits its Initial, so this happens a few times.
            Channel server = server(ctx, ch -> {
                ctx.newEngine(ch);
                providerCalls.incrementAndGet();
                provided.complete(ch);
                return clientCtx.newEngine(ch.alloc());
            }, new CompletableFuture<>());
            EventLoop loop = server.eventLoop();
            Channel client = Http3Peers.clientChannel(clientGroup, NioDatagramChannel.class, clientCtx,
                    ((InetSocketAddress) server.localAddress()).getPort());
            Future<QuicChannel> connect = Http3Peers.connect(client, (InetSocketAddress) server.localAddress(), 2_000);

            QuicChannel abandoned = provided.get(30, TimeUnit.SECONDS);
            loop.submit(() -> { }).sync(); // the codec gave the channel up in the read that called the provider
            assertFalse(abandoned.isOpen(), "the codec closed the channel");
            assertFalse(abandoned.isRegistered(), "the codec never registered the channel");
            assertFalse(abandoned.closeFuture().isDone(), "closeForcibly() does not complete the close future");

            assertTrue(connect.await(30, TimeUnit.SECONDS));
            assertFalse(connect.isSuccess(), "no handshake with a server that gave the connection up");
            client.close().sync(); // no more retransmitted Initials
            awaitTrue("the abandoned channels' bindings released", () -> ctx.boundChannels() == 0);
            assertTrue(providerCalls.get() >= 1);
            assertEquals(0, ctx.offloadedOperations());
            assertFalse(abandoned.closeFuture().isDone(), "released without the close future");
            server.close().sync();
        }
    }

    @Test
    void shouldKeepABoundChannelBoundUntilItCloses() throws Exception {
        try (SoftwareEngine engine = QuicOffloadIntegrationTest.softwareEngine(cert)) {
            QuicAsyncSslContext ctx = context(engine);
            CompletableFuture<QuicChannel> accepted = new CompletableFuture<>();
            Channel server = server(ctx, ctx::newEngine, accepted);
            InetSocketAddress address = (InetSocketAddress) server.localAddress();
            Channel client = Http3Peers.clientChannel(clientGroup, NioDatagramChannel.class,
                    Http3Peers.clientContext(cert.getRootCertificate()), address.getPort());
            QuicChannel quic = Http3Peers.connect(client, address).get(30, TimeUnit.SECONDS);
            QuicChannel serverSide = accepted.get(30, TimeUnit.SECONDS);
            serverSide.eventLoop().submit(() -> { }).sync(); // past the provider's check
            assertEquals(1, ctx.boundChannels(), "a registered, open channel stays bound");
            assertEquals(1, ctx.offloadedOperations(serverSide));
            quic.close().sync();
            awaitTrue("the server side closed and was unbound", () -> ctx.boundChannels() == 0);
            client.close().sync();
            server.close().sync();
        }
    }

    @Test
    void shouldReRunAPausedBatchAsTheExecutorsCurrentBatch() throws Exception {
        // Every operation hangs in the engine until the test completes it: each one surely pauses.
        try (FaultInjectingEngine engine = FaultInjectingEngine.builder().hangRate(1.0)
                .signer(new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(),
                        CryptoProviders.select(CryptoProviders.Choice.AUTO))).build()) {
            QuicAsyncSslContext ctx = context(engine);
            CompletableFuture<QuicChannel> accepted = new CompletableFuture<>();
            Channel server = server(ctx, ctx::newEngine, accepted);
            InetSocketAddress address = (InetSocketAddress) server.localAddress();
            Channel client = Http3Peers.clientChannel(clientGroup, NioDatagramChannel.class,
                    Http3Peers.clientContext(cert.getRootCertificate()), address.getPort());
            Future<QuicChannel> connect = Http3Peers.connect(client, address);
            awaitTrue("the handshake's signature paused in the engine", () -> engine.inFlight() == 1);
            assertEquals(1, engine.completeHung());
            QuicChannel quic = connect.get(30, TimeUnit.SECONDS);
            QuicChannel serverSide = accepted.get(30, TimeUnit.SECONDS);
            EventLoop loop = serverSide.eventLoop();

            // A batch that asks for a signature the way BoringSSL's task does (the key method, inside a batch run by
            // the codec's executor); the signature pauses in the engine, and its completion runs the batch again.
            byte[] input = "a batch re-run after its key operation completed".getBytes();
            AtomicInteger runs = new AtomicInteger();
            AtomicReference<Future<byte[]>> signature = new AtomicReference<>();
            AtomicReference<Runnable> currentInReRun = new AtomicReference<>();
            Promise<Void> reRun = loop.newPromise();
            Runnable[] batch = new Runnable[1];
            batch[0] = () -> {
                if (runs.incrementAndGet() == 1) {
                    signature.set(ctx.keyMethod().sign(serverSide.sslEngine(),
                            SignatureScheme.ECDSA_SECP256R1_SHA256.codePoint(), input));
                } else {
                    currentInReRun.set(ctx.redriveExecutor().current());
                    reRun.trySuccess(null);
                }
            };
            loop.execute(() -> ctx.redriveExecutor().execute(batch[0]));
            awaitTrue("the batch's signature paused in the engine", () -> signature.get() != null
                    && engine.inFlight() == 1);
            assertFalse(signature.get().isDone(), "paused");
            assertEquals(1, engine.completeHung());
            assertTrue(reRun.await(30, TimeUnit.SECONDS), () -> "the batch ran again after the signature completed: "
                    + runs.get() + " runs, signature " + signature.get() + " cause " + (signature.get() == null ? null
                    : signature.get().cause()));
            assertEquals(2, runs.get());
            assertSame(batch[0], currentInReRun.get(), "a key operation made by the re-run could pause too");
            Future<byte[]> done = signature.get();
            assertNotNull(done);
            assertTrue(done.isSuccess(), () -> "signature failed: " + done.cause());
            Signature verify = Signature.getInstance("SHA256withECDSA");
            verify.initVerify(cert.getKeyPair().getPublic());
            verify.update(input);
            assertTrue(verify.verify(done.getNow()), "the engine's signature verifies");

            quic.close().sync();
            awaitTrue("the server side closed and was unbound", () -> ctx.boundChannels() == 0);
            client.close().sync();
            server.close().sync();
        }
    }
}
