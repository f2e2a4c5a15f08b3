package io.asyncctx.quic;

import static io.asyncctx.quic.QuicOffloadIntegrationTest.awaitTrue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.testkit.SimulatedAcceleratorEngine;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncOffloadLoops;
import io.asyncctx.netty.OffloadConfig;
import io.asyncctx.netty.OffloadConfig.Notify;
import io.asyncctx.quic.QuicOffloadIntegrationTest.KeyKind;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.netty.channel.Channel;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.handler.codec.http3.Http3;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicSslContext;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.concurrent.Future;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * QUIC handshakes under load and faults, with real peers on one epoll loop: 500 at once against a 200 ms engine
 * overlap; a peer that vanishes mid-offload leaves nothing behind; engine errors fail only their connection; and the
 * builder's refusals.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class QuicOffloadRobustTest {

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

    private KeySigner signer() {
        return new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(),
                CryptoProviders.select(CryptoProviders.Choice.AUTO));
    }

    private QuicAsyncSslContext context(io.asyncctx.engine.AsyncEngine engine, Notify notify)
            throws javax.net.ssl.SSLException {
        return QuicAsyncSslContextBuilder.forServer(engine, cert.getCertificatePath())
                .applicationProtocols(Http3.supportedApplicationProtocols())
                .offloadConfig(OffloadConfig.builder().notify(notify).build()).build();
    }

    private Channel client(QuicSslContext ctx, int port) throws InterruptedException {
        return Http3Peers.clientChannel(clientGroup, Http3Peers.datagramClass("NIO"), ctx, port);
    }

    @Test
    void shouldOverlapFiveHundredHandshakesOnOneLoop() throws Exception {
        try (SimulatedAcceleratorEngine engine = SimulatedAcceleratorEngine.builder().latency(Duration.ofMillis(200))
                .signer(signer()).build()) {
            QuicAsyncSslContext ctx = context(engine, Notify.FD);
            Channel server = Http3Peers.server(serverGroup, Http3Peers.datagramClass("EPOLL"), ctx, 60_000);
            int port = ((InetSocketAddress) server.localAddress()).getPort();
            QuicSslContext clientCtx = Http3Peers.clientContext(cert.getRootCertificate());
            List<Channel> clients = new ArrayList<>();
            List<Future<QuicChannel>> connects = java.util.Collections.synchronizedList(new ArrayList<>());
            for (int c = 0; c < 10; c++) {
                clients.add(client(clientCtx, port));
            }
            // 500 connects within about 100 ms (bursts of 25 every 5 ms, so that the kernel's UDP buffers do not
            // drop Initial packets), while each signature takes 200 ms.
            List<java.util.concurrent.ScheduledFuture<?>> bursts = new ArrayList<>();
            for (int b = 0; b < 20; b++) {
                Channel client = clients.get(b % clients.size());
                bursts.add(clientGroup.schedule(() -> {
                    for (int i = 0; i < 25; i++) {
                        connects.add(Http3Peers.connect(client, (InetSocketAddress) server.localAddress()));
                    }
                }, b * 5L, TimeUnit.MILLISECONDS));
            }
            for (var b : bursts) {
                b.get(30, TimeUnit.SECONDS);
            }
            assertEquals(500, connects.size());
            for (Future<QuicChannel> f : connects) {
                assertTrue(f.await(120, TimeUnit.SECONDS), "handshake did not end");
                assertTrue(f.isSuccess(), () -> "handshake failed: " + f.cause());
            }
            assertEquals(500, engine.completed(), "every handshake signed by the engine");
            assertEquals(500, ctx.offloadedOperations());
            // One loop, one thread: had the loop waited for each 200 ms signature, at most one would be in flight.
            // Had the loop waited for each 200 ms signature, one would be in flight at a time. How many overlap depends
            // on how fast the (shared, 2-core) machine brings handshakes to their signature: 64 under a load of 14.
            assertTrue(engine.maxInFlight() >= 16, "operations in flight at most: " + engine.maxInFlight());
            System.out.println("QUIC overlap: " + engine.maxInFlight() + " signatures in flight at most");
            // Closing the server's UDP channel closes its 500 QUIC connections: their offload state goes with them.
            IoEventLoop loop = (IoEventLoop) server.eventLoop();
            server.close().sync();
            awaitTrue("offload state released", () -> ctx.boundChannels() == 0
                    && AsyncOffloadLoops.openConnections(loop) == 0 && AsyncOffloadLoops.jobsInFlight(loop) == 0
                    && AsyncOffloadLoops.registeredWaitFds(loop) == 0);
            for (Channel c : clients) {
                c.close().sync();
            }
        }
    }

    @Test
    void shouldReleaseEverythingWhenThePeerVanishesMidOffload() throws Exception {
        for (Notify notify : List.of(Notify.FD, Notify.CALLBACK)) {
            try (FaultInjectingEngine engine = FaultInjectingEngine.builder().signer(signer()).hangRate(1.0)
                    .build()) {
                QuicAsyncSslContext ctx = context(engine, notify);
                // A short idle timeout: the server gives the vanished peer up after 1 s.
                Channel server = Http3Peers.server(serverGroup, Http3Peers.datagramClass("EPOLL"), ctx, 1_000);
                IoEventLoop loop = (IoEventLoop) server.eventLoop();
                int port = ((InetSocketAddress) server.localAddress()).getPort();
                Channel client = client(Http3Peers.clientContext(cert.getRootCertificate()), port);
                Future<QuicChannel> connect = Http3Peers.connect(client, (InetSocketAddress) server.localAddress());
                awaitTrue("job paused in the engine", () -> engine.inFlight() == 1
                        && AsyncOffloadLoops.jobsInFlight(loop) == 1);
                if (notify == Notify.FD) {
                    // Read on the loop, after the task that offered the operation: the job pauses and registers its
                    // wait fd in that task, after the engine counted the operation in flight.
                    assertTrue(loop.submit(() -> AsyncOffloadLoops.registeredWaitFds(loop)).get(10, TimeUnit.SECONDS)
                            >= 1, "the ctx's wait fd is registered");
                }
                client.close().sync(); // vanishes: no CONNECTION_CLOSE reaches the server
                awaitTrue("server gave the connection up and released its offload state", () ->
                        ctx.boundChannels() == 0 && AsyncOffloadLoops.openConnections(loop) == 0
                                && AsyncOffloadLoops.jobsInFlight(loop) == 0
                                && AsyncOffloadLoops.registeredWaitFds(loop) == 0 && engine.inFlight() == 0);
                // The engine counts a cancel just after it takes the operation out of flight; nothing else can end a
                // hung operation here.
                awaitTrue("the engine was told to cancel the abandoned operation", () -> engine.cancelled() == 1);
                assertTrue(connect.await(30, TimeUnit.SECONDS));
                assertTrue(!connect.isSuccess());
                server.close().sync();
            }
        }
    }

    @Test
    void shouldFailOnlyTheConnectionWhoseOperationFailed() throws Exception {
        try (FaultInjectingEngine engine = FaultInjectingEngine.builder().signer(signer()).seed(7).errorRate(0.5)
                .build()) {
            QuicAsyncSslContext ctx = context(engine, Notify.FD);
            Channel server = Http3Peers.server(serverGroup, Http3Peers.datagramClass("EPOLL"), ctx, 10_000);
            InetSocketAddress addr = (InetSocketAddress) server.localAddress();
            List<Channel> clients = new ArrayList<>();
            List<Future<QuicChannel>> connects = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                // One client context each (no session resumption), all at once; a failed one ends by its timeout.
                Channel client = client(Http3Peers.clientContext(cert.getRootCertificate()), addr.getPort());
                clients.add(client);
                connects.add(Http3Peers.connect(client, addr, 5_000));
            }
            int ok = 0;
            int failed = 0;
            for (Future<QuicChannel> connect : connects) {
                assertTrue(connect.await(60, TimeUnit.SECONDS), "handshake did not end");
                if (connect.isSuccess()) {
                    String body = Http3Peers.get(connect.getNow(), "localhost").get(30, TimeUnit.SECONDS);
                    assertTrue(body.startsWith("HTTP/3"), body);
                    connect.getNow().close().sync();
                    ok++;
                } else {
                    failed++;
                }
            }
            for (Channel c : clients) {
                c.close().sync();
            }
            assertEquals(12, engine.submitted());
            assertEquals(engine.failed(), failed, "exactly the connections whose signature failed");
            assertEquals(engine.completed(), ok);
            assertTrue(ok > 0 && failed > 0, "ok " + ok + ", failed " + failed);
            assertTrue(server.isActive(), "the server's UDP channel stays up");
            server.close().sync();
        }
    }

    @Test
    void shouldRefuseAnEngineWhoseKeyDoesNotMatchTheCertificate() throws Exception {
        X509Bundle other = QuicOffloadIntegrationTest.certificate(KeyKind.EC_P256);
        try (SoftwareEngine engine = QuicOffloadIntegrationTest.softwareEngine(other)) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> QuicAsyncSslContextBuilder.forServer(engine, cert.getCertificatePath()).build());
            assertTrue(e.getMessage().contains("does not match the certificate"), e.getMessage());
        }
    }

    @Test
    void shouldRefuseKeyTypeOptionsAndMismatchedCodecBuilders() throws Exception {
        try (SoftwareEngine engine = QuicOffloadIntegrationTest.softwareEngine(cert)) {
            QuicAsyncSslContextBuilder b = QuicAsyncSslContextBuilder.forServer(engine, cert.getCertificatePath());
            for (io.netty.handler.ssl.SslContextOption<?> option : java.util.List.of(
                    io.netty.handler.codec.quic.BoringSSLContextOption.SERVER_KEY_TYPES,
                    io.netty.handler.codec.quic.BoringSSLContextOption.CLIENT_KEY_TYPES)) {
                IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                        () -> b.option(option, null));
                assertTrue(refused.getMessage().contains("option " + option + " is set by QuicAsyncSslContextBuilder "
                        + "itself"), refused.getMessage());
            }
            QuicAsyncSslContext ctx = b.applicationProtocols(Http3.supportedApplicationProtocols()).build();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ctx.configure(Http3.newQuicClientCodecBuilder()));
            assertTrue(e.getMessage().contains("forClient"), e.getMessage());
        }
    }

}
