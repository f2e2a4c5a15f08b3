package io.asyncctx.frameworks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.LeakCheck;
import io.asyncctx.netty.AsyncSslContextBuilder;
import io.asyncctx.netty.OffloadConfig;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.asyncctx.testkit.FloodingPeer;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;

import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * {@link VertxTlsServer}, Vert.x 5's HTTPS server given the library's context through its SSL engine SPI
 * ({@link AsyncSslEngineOptions}), seen from outside: curl over HTTP/1.1 and h2 and h2load make full handshakes,
 * each of whose key operations is offloaded on the bound path (Vert.x's delegating context calls {@code newHandler});
 * Vert.x's {@code sslHandshakeTimeout} closes a silent client and a paused handshake; a flooding client during a
 * paused handshake is held to the kernel's buffers; nothing stays bound or in flight after close.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class VertxFrameworkTest {

    private static final Duration HANDSHAKE_TIMEOUT = Duration.ofSeconds(2);

    private static X509Bundle cert;
    private static Vertx vertx;

    @BeforeAll
    static void setUp() throws Exception {
        cert = ExampleTls.selfSigned("localhost", CertificateBuilder.Algorithm.ecp256);
        vertx = Vertx.vertx();
    }

    @AfterAll
    static void tearDown() throws Exception {
        vertx.close().await(20, TimeUnit.SECONDS);
    }

    private static FaultInjectingEngine gate() {
        return FaultInjectingEngine.builder().name("gate").hangRate(1.0)
                .signer(new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(), null))
                .build();
    }

    private static AsyncSslContext hangingContext(FaultInjectingEngine gate) throws Exception {
        return AsyncSslContextBuilder.forServer(gate, cert.getCertificate())
                .offloadConfig(OffloadConfig.builder().operationTimeout(Duration.ZERO).build())
                .applicationProtocolConfig(new ApplicationProtocolConfig(ApplicationProtocolConfig.Protocol.ALPN,
                        ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
                        ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT, "h2", "http/1.1"))
                .build();
    }

    private static void close(HttpServer server) throws Exception {
        server.close().await(20, TimeUnit.SECONDS);
    }

    @Test
    void shouldOffloadEveryFullHandshakeOfCurlAndH2load() throws Exception {
        try (SoftwareEngine engine = ExampleTls.engine(cert)) {
            AsyncSslContext ctx = ExampleTls.context(engine, cert, "h2", "http/1.1");
            HttpServer server = VertxTlsServer.start(vertx, ctx, cert.getCertificate(), 0, Duration.ofSeconds(30));
            int fdsBefore = Peers.openFds();
            int handshakes = 0;
            try {
                for (int i = 0; i < 3; i++) {
                    Peers.Result r = Peers.curl(server.actualPort(), "--http1.1");
                    assertEquals(0, r.exitCode(), r.output());
                    assertTrue(r.output().contains("hello from Vert.x, HTTP_1_1"), r.output());
                    handshakes++;
                }
                for (int i = 0; i < 3; i++) {
                    Peers.Result r = Peers.curl(server.actualPort(), "--http2");
                    assertEquals(0, r.exitCode(), r.output());
                    assertTrue(r.output().contains("hello from Vert.x, HTTP_2"), r.output());
                    handshakes++;
                }
                int clients = 4;
                Peers.Result h2load = Peers.run(List.of("h2load", "-n", "40", "-c", Integer.toString(clients),
                        "https://127.0.0.1:" + server.actualPort() + "/"), null, 60);
                assertEquals(0, h2load.exitCode(), h2load.output());
                assertTrue(h2load.output().contains("40 succeeded"), h2load.output());
                handshakes += clients;

                System.out.printf("vertx: %d full handshakes (curl 3 x h1, 3 x h2, h2load %d clients), "
                                + "%d key operations offloaded, %d inline, %d detached%n", handshakes, clients,
                        ctx.offloadedOperations(), ctx.inlineOperations(), ctx.detachedOperations());
                assertEquals(handshakes, ctx.offloadedOperations(), "one offloaded key operation per full handshake");
                assertEquals(0, ctx.inlineOperations());
                assertEquals(0, ctx.detachedOperations(), "Vert.x calls newHandler: every channel binds itself");
                Peers.await("every channel unbound", () -> ctx.boundChannels() == 0);
                assertEquals(0, ctx.operationsInFlight());
                Peers.awaitFds(fdsBefore);
            } finally {
                close(server);
            }
        }
    }

    @Test
    void shouldCloseASilentClientAtVertxsHandshakeTimeout() throws Exception {
        try (SoftwareEngine engine = ExampleTls.engine(cert)) {
            AsyncSslContext ctx = ExampleTls.context(engine, cert, "h2", "http/1.1");
            HttpServer server = VertxTlsServer.start(vertx, ctx, cert.getCertificate(), 0, HANDSHAKE_TIMEOUT);
            try (SocketChannel silent = Peers.connect(server.actualPort())) {
                long start = System.nanoTime();
                assertTrue(FloodingPeer.awaitClosedByServer(silent, Duration.ofSeconds(30)), "never closed");
                double seconds = Peers.secondsSince(start);
                System.out.printf("vertx: silent client closed after %.2f s (sslHandshakeTimeout %s)%n", seconds,
                        HANDSHAKE_TIMEOUT);
                assertTrue(seconds > 1.5, "closed after " + seconds + " s, before the handshake timeout");
                assertTrue(seconds < 15, "closed after " + seconds + " s");
                Peers.await("the channel unbound", () -> ctx.boundChannels() == 0);
            } finally {
                close(server);
            }
        }
    }

    @Test
    void shouldCloseAPausedHandshakeAtVertxsHandshakeTimeoutAndCancelItsOperation() throws Exception {
        try (FaultInjectingEngine gate = gate()) {
            AsyncSslContext ctx = hangingContext(gate);
            HttpServer server = VertxTlsServer.start(vertx, ctx, cert.getCertificate(), 0, HANDSHAKE_TIMEOUT);
            try (SocketChannel client = Peers.connect(server.actualPort())) {
                long start = System.nanoTime();
                FloodingPeer.writeFully(client, Peers.clientHello(null));
                Peers.await("the key operation waits in the engine", () -> gate.hung() == 1);
                assertEquals(1, ctx.boundChannels());
                assertTrue(FloodingPeer.awaitClosedByServer(client, Duration.ofSeconds(30)), "never closed");
                double seconds = Peers.secondsSince(start);
                System.out.printf("vertx: paused handshake closed after %.2f s (sslHandshakeTimeout %s)%n", seconds,
                        HANDSHAKE_TIMEOUT);
                assertTrue(seconds > 1.5, "closed after " + seconds + " s, before the handshake timeout");
                assertTrue(seconds < 15, "closed after " + seconds + " s");
                Peers.await("the channel unbound and its operation cancelled",
                        () -> ctx.boundChannels() == 0 && ctx.operationsInFlight() == 0);
                assertEquals(1, gate.cancelled());
            } finally {
                close(server);
            }
        }
    }

    @Test
    void shouldHoldAFloodingClientsReadsWhileItsHandshakeIsPaused() throws Exception {
        try (FaultInjectingEngine gate = gate()) {
            AsyncSslContext ctx = hangingContext(gate);
            HttpServer server = VertxTlsServer.start(vertx, ctx, cert.getCertificate(), 0, Duration.ofSeconds(60));
            int fdsBefore = Peers.openFds();
            try {
                try (SocketChannel flooder = Peers.connect(server.actualPort())) {
                    FloodingPeer.writeFully(flooder, Peers.clientHello(null));
                    Peers.await("the flooder's key operation waits in the engine", () -> gate.hung() == 1);
                    long written = FloodingPeer.flood(flooder, Peers.FLOOD_CAP, Peers.FLOOD_MAX, Peers.FLOOD_STALL);
                    System.out.printf("vertx: flooding client got %.2f MB into a paused handshake%n",
                            written / 1048576.0);
                    assertTrue(written < Peers.FLOOD_LIMIT, "the flooder got " + written
                            + " bytes into a paused handshake");
                    assertEquals(1, gate.hung(), "still paused during the flood");
                    assertEquals(1, gate.completeHung());
                    assertTrue(FloodingPeer.awaitClosedByServer(flooder, Duration.ofSeconds(20)),
                            "the server closed the flooder after reading its junk");
                }
                Peers.await("the channel unbound", () -> ctx.boundChannels() == 0 && ctx.operationsInFlight() == 0);
                Peers.awaitFds(fdsBefore);
            } finally {
                close(server);
            }
        }
    }
}
