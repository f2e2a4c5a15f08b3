package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.SignatureScheme;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsFixtures.ProcessResult;
import io.asyncctx.netty.TlsFixtures.TlsScriptedEngine;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.netty.pkitesting.X509Bundle;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The measured inline policy: cheap schemes sign on the loop, slow ones still go through jobs. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TlsInlinePolicyTest {

    @Test
    void shouldSignCheapSchemeInlineAndCountIt() throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.EC_P256);
        try (SoftwareEngine engine = TlsFixtures.softwareEngine(cert)) {
            // 5 ms is far above a P-256 signature on any machine, so the measurement must pick it.
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                    .inlinePolicy(InlinePolicy.belowMeasuredCost(Duration.ofMillis(5))).build();
            assertTrue(ctx.inlineSchemes().contains(SignatureScheme.ECDSA_SECP256R1_SHA256), ctx.inlineSchemes()::toString);
            long engineBefore = engine.operationsCompleted();
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
                ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                assertTrue(r.output().contains("TLSv1.3 TLS_"), r.output());
            }
            assertEquals(1, ctx.inlineOperations());
            assertEquals(0, ctx.offloadedOperations());
            assertEquals(engineBefore, engine.operationsCompleted(), "the engine's workers did not sign");
        }
    }

    @Test
    void shouldOffloadSchemesAboveTheThreshold() throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.RSA);
        try (SoftwareEngine engine = TlsFixtures.softwareEngine(cert)) {
            // No RSA-2048 signature takes 1 us.
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                    .inlinePolicy(InlinePolicy.belowMeasuredCost(Duration.ofNanos(1_000))).build();
            assertTrue(ctx.inlineSchemes().isEmpty(), ctx.inlineSchemes()::toString);
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
                ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                assertTrue(r.output().contains("TLSv1.3 TLS_"), r.output());
            }
            assertEquals(0, ctx.inlineOperations());
            assertEquals(1, ctx.offloadedOperations());
        }
    }

    @Test
    void shouldNeverInlineForEnginesWithoutAnInlineSigner() throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.EC_P256);
        try (TlsScriptedEngine engine = new TlsScriptedEngine(cert.getKeyPair(), List.of(0))) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                    .inlinePolicy(InlinePolicy.belowMeasuredCost(Duration.ofSeconds(1))).build();
            assertTrue(ctx.inlineSchemes().isEmpty());
        }
    }

    @Test
    void shouldExposeTheMeasuredMediansThroughTheDecision() throws Exception {
        X509Bundle cert = TlsFixtures.certificate(KeyKind.EC_P256);
        try (SoftwareEngine engine = TlsFixtures.softwareEngine(cert)) {
            InlinePolicy.Decision d = InlinePolicy.belowMeasuredCost(Duration.ofMillis(5)).resolve(engine);
            // Every ECDSA scheme fits an EC key and is measured; no RSA or Ed25519 scheme is.
            for (SignatureScheme s : SignatureScheme.values()) {
                assertEquals("EC".equals(s.keyAlgorithm()), d.medianNanos().containsKey(s), s::toString);
            }
            assertTrue(d.medianNanos().get(SignatureScheme.ECDSA_SECP256R1_SHA256) > 0, d::toString);
            assertTrue(d.isInline(SignatureScheme.ECDSA_SECP256R1_SHA256), d::toString);
            assertEquals(d.inline().contains(SignatureScheme.RSA_PSS_RSAE_SHA256),
                    d.isInline(SignatureScheme.RSA_PSS_RSAE_SHA256));
            assertTrue(d.signer() != null);
            assertEquals(InlinePolicy.Decision.none(), InlinePolicy.never().resolve(engine));
            assertTrue(InlinePolicy.Decision.none().medianNanos().isEmpty());
        }
    }

    @Test
    void shouldRefuseNegativeThreshold() {
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> InlinePolicy.belowMeasuredCost(Duration.ofNanos(-1)));
        assertTrue(e.getMessage().contains("threshold"), e.getMessage());
        assertEquals(InlinePolicy.never(), InlinePolicy.belowMeasuredCost(Duration.ZERO));
    }
}
