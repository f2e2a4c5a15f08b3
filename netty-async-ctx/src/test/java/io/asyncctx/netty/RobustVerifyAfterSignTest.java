package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.engine.SignatureScheme;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.engine.VerifyingKeySigner;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsFixtures.ProcessResult;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.netty.pkitesting.X509Bundle;

import java.security.GeneralSecurityException;
import java.security.PublicKey;
import java.security.SignatureException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Verify-after-sign: a signer that flips one bit of its RSA signatures is caught before the signature leaves the
 * engine (PKCS#1 and PSS), counted, and fails the operation; through TLS the handshake fails with the reason, or
 * completes on a fallback engine.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RobustVerifyAfterSignTest {

    private static X509Bundle rsa;
    private static X509Bundle ec;

    @BeforeAll
    static void setUp() throws Exception {
        rsa = TlsFixtures.certificate(KeyKind.RSA);
        ec = TlsFixtures.certificate(KeyKind.EC_P256);
    }

    /** Signs for real, then flips one bit of every result (the fault of a broken CRT half or accelerator). */
    static final class BitFlippingSigner implements KeySigner {
        final KeySigner delegate;
        final AtomicInteger flipped = new AtomicInteger();

        BitFlippingSigner(KeySigner delegate) {
            this.delegate = delegate;
        }

        @Override
        public PublicKey publicKey() {
            return delegate.publicKey();
        }

        @Override
        public byte[] perform(KeyOperation operation) throws GeneralSecurityException {
            byte[] sig = delegate.perform(operation);
            sig[sig.length / 2] ^= 0x10;
            flipped.incrementAndGet();
            return sig;
        }
    }

    private static JcaKeySigner jca(X509Bundle cert) {
        return new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(), null);
    }

    @ParameterizedTest
    @EnumSource(value = SignatureScheme.class, names = {"RSA_PKCS1_SHA256", "RSA_PKCS1_SHA384", "RSA_PKCS1_SHA512",
        "RSA_PSS_RSAE_SHA256", "RSA_PSS_RSAE_SHA384", "RSA_PSS_RSAE_SHA512"})
    void shouldWithholdAFaultyRsaSignatureAndCountIt(SignatureScheme scheme) throws Exception {
        byte[] message = "a TLS 1.3 CertificateVerify input".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        VerifyingKeySigner faulty = new VerifyingKeySigner(new BitFlippingSigner(jca(rsa)));
        SignatureException e = assertThrows(SignatureException.class,
                () -> faulty.perform(KeyOperation.sign(scheme, message)));
        assertTrue(e.getMessage().contains("did not verify"), e.getMessage());
        assertEquals(1, faulty.verificationFailures());
        assertEquals(0, faulty.signaturesVerified());

        VerifyingKeySigner good = new VerifyingKeySigner(jca(rsa));
        byte[] sig = good.perform(KeyOperation.sign(scheme, message));
        assertEquals(256, sig.length);
        assertEquals(1, good.signaturesVerified());
        assertEquals(0, good.verificationFailures());
    }

    @Test
    void shouldPassNonRsaResultsThroughUnchecked() throws Exception {
        byte[] message = new byte[] {1, 2, 3};
        BitFlippingSigner flipping = new BitFlippingSigner(jca(ec));
        VerifyingKeySigner v = new VerifyingKeySigner(flipping);
        byte[] sig = v.perform(KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256, message));
        assertTrue(sig.length > 0);
        assertEquals(0, v.signaturesVerified() + v.verificationFailures(), "only RSA signatures are checked");
        byte[] raw = new byte[256];
        raw[255] = 7;
        BitFlippingSigner decrypting = new BitFlippingSigner(jca(rsa));
        byte[] plain = new VerifyingKeySigner(decrypting).perform(KeyOperation.decrypt(raw));
        assertEquals(256, plain.length, "decryptions pass through");
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({
        "-tls1_3, rsa_pss_rsae_sha256",
        "-tls1_2, rsa_pkcs1_sha256"
    })
    void shouldFailTheHandshakeWithTheReasonWhenTheEngineSignsWrong(String protocol, String sigalg) throws Exception {
        BitFlippingSigner flipping = new BitFlippingSigner(jca(rsa));
        VerifyingKeySigner verifying = new VerifyingKeySigner(flipping);
        try (FaultInjectingEngine engine = FaultInjectingEngine.builder().name("faulty").signer(verifying).build()) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, rsa.getCertificate())
                    .protocols("TLSv1.3", "TLSv1.2").build();
            try (RobustTlsServer server = new RobustTlsServer(Transport.EPOLL, 1, ctx)) {
                ProcessResult r = TlsFixtures.sClient(server.port(), protocol, "-sigalgs", sigalg);
                assertFalse(r.output().contains("HTTP/1.1 200"), r.output());
                Loops.await("the handshake failed", () -> server.handshakesEnded() == 1);
                String chain = RobustCancelDeadlineTest.chain(server.failures.get(0));
                assertTrue(chain.contains("did not verify with the public key"), chain);
                assertEquals(RobustTlsServer.Outcome.ENGINE_ERROR, RobustTlsServer.classify(server.failures.get(0)));
                assertEquals(1, verifying.verificationFailures());
                assertEquals(1, flipping.flipped.get());
            }
        }
    }

    @Test
    void shouldCompleteOnTheFallbackWhenTheVerificationFails() throws Exception {
        VerifyingKeySigner verifying = new VerifyingKeySigner(new BitFlippingSigner(jca(rsa)));
        try (FaultInjectingEngine engine = FaultInjectingEngine.builder().name("faulty").signer(verifying).build();
             SoftwareEngine fallback = SoftwareEngine.builder().keyPair(rsa.getKeyPair()).workers(1)
                     .verifyAfterSign(true).name("verified-fallback").build()) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, rsa.getCertificate())
                    .offloadConfig(OffloadConfig.builder().fallbackEngine(fallback).build()).build();
            try (RobustTlsServer server = new RobustTlsServer(Transport.NIO, 1, ctx)) {
                ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                assertTrue(r.output().contains("TLSv1.3 TLS_"), r.output());
                assertEquals(1, verifying.verificationFailures());
                assertEquals(1, server.sum(AsyncOffloadLoops::fallbackOperations));
                assertEquals(1, fallback.operationsCompleted());
                assertEquals(0, fallback.verificationFailures(), "the fallback's own check passed");
            }
        }
    }

    @Test
    void shouldReturnTheSameSignatureWhenItVerifies() throws Exception {
        byte[] message = new byte[] {9, 8, 7};
        KeyOperation op = KeyOperation.sign(SignatureScheme.RSA_PKCS1_SHA256, message);
        assertArrayEquals(jca(rsa).perform(op), new VerifyingKeySigner(jca(rsa)).perform(op),
                "PKCS#1 v1.5 is deterministic: the checked signature is the signer's own");
    }
}
