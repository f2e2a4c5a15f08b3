package io.asyncctx.frameworks;

import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.LeakCheck;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;

import java.time.Duration;
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
 * paused handshake is held to the kernel's buffers; nothing stays bound or in flight after close. The checks are
 * {@link FrameworkChecks}'.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class VertxFrameworkTest {

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

    private static AsyncSslContext hangingContext(FaultInjectingEngine gate) throws Exception {
        return FrameworkChecks.hangingContext(gate, cert, Duration.ZERO, "h2", "http/1.1");
    }

    private static void close(HttpServer server) throws Exception {
        server.close().await(20, TimeUnit.SECONDS);
    }

    @Test
    void shouldOffloadEveryFullHandshakeOfCurlAndH2load() throws Exception {
        try (SoftwareEngine engine = ExampleTls.engine(cert)) {
            AsyncSslContext ctx = ExampleTls.context(engine, cert, "h2", "http/1.1");
            HttpServer server = VertxTlsServer.start(vertx, ctx, cert.getCertificate(), 0, Duration.ofSeconds(30));
            try {
                FrameworkChecks.everyFullHandshakeOfCurlAndH2loadOffloaded("vertx", ctx, server.actualPort(),
                        "hello from Vert.x, HTTP_1_1", "hello from Vert.x, HTTP_2");
            } finally {
                close(server);
            }
        }
    }

    @Test
    void shouldCloseASilentClientAtVertxsHandshakeTimeout() throws Exception {
        try (SoftwareEngine engine = ExampleTls.engine(cert)) {
            AsyncSslContext ctx = ExampleTls.context(engine, cert, "h2", "http/1.1");
            HttpServer server = VertxTlsServer.start(vertx, ctx, cert.getCertificate(), 0,
                    FrameworkChecks.HANDSHAKE_TIMEOUT);
            try {
                FrameworkChecks.silentClientClosedAtHandshakeTimeout("vertx", "sslHandshakeTimeout",
                        server.actualPort());
                Peers.await("the channel unbound", () -> ctx.boundChannels() == 0);
            } finally {
                close(server);
            }
        }
    }

    @Test
    void shouldCloseAPausedHandshakeAtVertxsHandshakeTimeoutAndCancelItsOperation() throws Exception {
        try (FaultInjectingEngine gate = FrameworkChecks.gate(cert)) {
            AsyncSslContext ctx = hangingContext(gate);
            HttpServer server = VertxTlsServer.start(vertx, ctx, cert.getCertificate(), 0,
                    FrameworkChecks.HANDSHAKE_TIMEOUT);
            try {
                FrameworkChecks.pausedHandshakeClosedAtHandshakeTimeout("vertx", "sslHandshakeTimeout",
                        server.actualPort(), null, gate, ctx, () -> { });
            } finally {
                close(server);
            }
        }
    }

    @Test
    void shouldHoldAFloodingClientsReadsWhileItsHandshakeIsPaused() throws Exception {
        try (FaultInjectingEngine gate = FrameworkChecks.gate(cert)) {
            AsyncSslContext ctx = hangingContext(gate);
            HttpServer server = VertxTlsServer.start(vertx, ctx, cert.getCertificate(), 0, Duration.ofSeconds(60));
            try {
                FrameworkChecks.floodingClientHeldWhileItsHandshakeIsPaused("vertx", server.actualPort(), null, gate,
                        ctx, () -> { });
            } finally {
                close(server);
            }
        }
    }
}
