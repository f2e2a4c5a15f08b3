package io.asyncctx.frameworks;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.LeakCheck;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import reactor.netty.DisposableServer;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * {@link ReactorTlsServer}, Reactor Netty's own {@code HttpServer.secure(spec -> spec.sslContext(ctx))}, seen from
 * outside: curl over HTTP/1.1 and h2 and h2load make full handshakes, each of whose key operations the context counts
 * as offloaded (on the bound path: Reactor calls {@code newHandler}); Reactor's handshake timeout closes a silent
 * client and a paused handshake; a flooding client during a paused handshake is held to the kernel's buffers; nothing
 * stays bound or in flight after close. The checks are {@link FrameworkChecks}'.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ReactorFrameworkTest {

    private static X509Bundle cert;

    @BeforeAll
    static void certificate() throws Exception {
        cert = ExampleTls.selfSigned("localhost", CertificateBuilder.Algorithm.ecp256);
    }

    private static AsyncSslContext hangingContext(FaultInjectingEngine gate) throws Exception {
        return FrameworkChecks.hangingContext(gate, cert, Duration.ZERO, "h2", "http/1.1");
    }

    @Test
    void shouldOffloadEveryFullHandshakeOfCurlAndH2load() throws Exception {
        try (SoftwareEngine engine = ExampleTls.engine(cert)) {
            AsyncSslContext ctx = ExampleTls.context(engine, cert, "h2", "http/1.1");
            DisposableServer server = ReactorTlsServer.start(ctx, 0, Duration.ofSeconds(30));
            try {
                FrameworkChecks.everyFullHandshakeOfCurlAndH2loadOffloaded("reactor", ctx, server.port(),
                        "hello from Reactor Netty, HTTP/1.1", "hello from Reactor Netty, HTTP/2.0",
                        "Application protocol: h2");
            } finally {
                server.disposeNow(Duration.ofSeconds(10));
            }
        }
    }

    @Test
    void shouldCloseASilentClientAtReactorsHandshakeTimeout() throws Exception {
        try (SoftwareEngine engine = ExampleTls.engine(cert)) {
            AsyncSslContext ctx = ExampleTls.context(engine, cert, "h2", "http/1.1");
            DisposableServer server = ReactorTlsServer.start(ctx, 0, FrameworkChecks.HANDSHAKE_TIMEOUT);
            try {
                FrameworkChecks.silentClientClosedAtHandshakeTimeout("reactor", "handshakeTimeout", server.port());
                Peers.await("the channel unbound", () -> ctx.boundChannels() == 0);
                assertEquals(0, ctx.offloadedOperations(), "no ClientHello, no key operation");
            } finally {
                server.disposeNow(Duration.ofSeconds(10));
            }
        }
    }

    @Test
    void shouldCloseAPausedHandshakeAtReactorsHandshakeTimeoutAndCancelItsOperation() throws Exception {
        try (FaultInjectingEngine gate = FrameworkChecks.gate(cert)) {
            AsyncSslContext ctx = hangingContext(gate);
            DisposableServer server = ReactorTlsServer.start(ctx, 0, FrameworkChecks.HANDSHAKE_TIMEOUT);
            try {
                FrameworkChecks.pausedHandshakeClosedAtHandshakeTimeout("reactor", "handshakeTimeout", server.port(),
                        null, gate, ctx, () -> assertEquals(1, ctx.operationsInFlight()));
                assertEquals(1, ctx.offloadedOperations());
            } finally {
                server.disposeNow(Duration.ofSeconds(10));
            }
        }
    }

    @Test
    void shouldHoldAFloodingClientsReadsWhileItsHandshakeIsPaused() throws Exception {
        try (FaultInjectingEngine gate = FrameworkChecks.gate(cert)) {
            AsyncSslContext ctx = hangingContext(gate);
            DisposableServer server = ReactorTlsServer.start(ctx, 0, Duration.ofSeconds(60));
            try {
                FrameworkChecks.floodingClientHeldWhileItsHandshakeIsPaused("reactor", server.port(), null, gate, ctx,
                        () -> assertEquals(1, ctx.boundChannels()));
            } finally {
                server.disposeNow(Duration.ofSeconds(10));
            }
        }
    }
}
