package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsFixtures.ProcessResult;
import io.asyncctx.netty.TlsFixtures.TlsScriptedEngine;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.netty.pkitesting.X509Bundle;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLHandshakeException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Engine faults seen through real handshakes: ERR fails that handshake with a clear SSLHandshakeException and leaves
 * the next connection unharmed; EAGAIN is retried until the engine takes the operation.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TlsEngineFailureTest {

    @Test
    void shouldFailOnlyTheHandshakeWhoseOperationFailed() throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.RSA);
        try (TlsScriptedEngine engine = new TlsScriptedEngine(cert.getKeyPair(), List.of(-1, 0))) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate()).build();
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
                ProcessResult failed = TlsFixtures.sClient(server.port(), "-tls1_3");
                assertFalse(failed.output().contains("TLSv1.3 TLS_"), failed.output());
                awaitCondition(() -> server.handshakeFailures.get() == 1);
                Throwable cause = server.lastHandshakeFailure;
                assertTrue(cause instanceof SSLHandshakeException, String.valueOf(cause));
                assertTrue(causeChainMentions(cause, "scripted engine failure"),
                        () -> "the failure should carry the engine's reason: " + cause);

                ProcessResult ok = TlsFixtures.sClient(server.port(), "-tls1_3");
                assertTrue(ok.output().contains("TLSv1.3 TLS_"), ok.output());
                assertEquals(1, server.handshakes.get());
                assertEquals(1, engine.failed.get());
                assertEquals(1, engine.completed.get());
            }
        }
    }

    @Test
    void shouldRetryEagainUntilTheEngineTakesTheOperation() throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.EC_P256);
        try (TlsScriptedEngine engine = new TlsScriptedEngine(cert.getKeyPair(), List.of(3))) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                    .offloadConfig(OffloadConfig.builder().eagainInitialBackoff(Duration.ofMillis(1)).build())
                    .build();
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
                ProcessResult ok = TlsFixtures.sClient(server.port(), "-tls1_3");
                assertTrue(ok.output().contains("TLSv1.3 TLS_"), ok.output());
                assertEquals(3, engine.eagains.get(), "three EAGAIN answers before the engine took it");
                assertEquals(4, engine.offers.get());
                assertEquals(1, engine.completed.get());
            }
        }
    }

    @Test
    void shouldFailHandshakeWhenEagainRetriesAreExhausted() throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.EC_P256);
        try (TlsScriptedEngine engine = new TlsScriptedEngine(cert.getKeyPair(), List.of(1_000))) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                    .offloadConfig(OffloadConfig.builder().eagainInitialBackoff(Duration.ofMillis(1))
                            .eagainMaxBackoff(Duration.ofMillis(4)).eagainMaxRetries(5).build())
                    .build();
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
                ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                assertFalse(r.output().contains("TLSv1.3 TLS_"), r.output());
                awaitCondition(() -> server.handshakeFailures.get() == 1);
                assertEquals(6, engine.offers.get(), "the first try and five retries");
                assertTrue(causeChainMentions(server.lastHandshakeFailure, "scripted"),
                        () -> "the failure names the engine: " + server.lastHandshakeFailure);
            }
        }
    }

    static boolean causeChainMentions(Throwable t, String text) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (String.valueOf(c.getMessage()).contains(text)) {
                return true;
            }
        }
        return false;
    }

    static void awaitCondition(java.util.function.BooleanSupplier condition) throws InterruptedException {
        io.asyncctx.testkit.Await.until("the condition", java.time.Duration.ofSeconds(20), condition);
    }
}
