package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.pkcs11.P11KitServer;
import io.asyncctx.engine.pkcs11.Pkcs11Engine;
import io.asyncctx.engine.pkcs11.SoftHsmToken;
import io.asyncctx.netty.TlsFixtures.ProcessResult;
import io.asyncctx.netty.TlsTestServer.Transport;

import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A token on "another machine": SoftHSM2 exported by a real {@code p11-kit server} on a unix socket, used through
 * p11-kit-client.so, the key named by a PKCS#11 URI, the token holding keys only (certificates from files). RSA and EC:
 * this p11-kit (0.24) does not forward CKM_EDDSA, so an Ed25519 key is refused at build time with that reason. openssl
 * s_client handshakes over TLS 1.3 and 1.2 (RSA decryption too), fd and callback paths; then the server is killed
 * while the engine is in use (handshakes fail with the token's reason) and started again (new handshakes succeed
 * without restarting the TLS server).
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class TlsRemoteTokenTest {

    private static SoftHsmToken token;
    private static P11KitServer p11kit;

    @BeforeAll
    static void start() throws Exception {
        SoftHsmToken.assumeAvailable();
        P11KitServer.assumeAvailable();
        token = SoftHsmToken.builder()
                .key("rsa-key", SoftHsmToken.KeyType.RSA_2048, SoftHsmToken.CertMode.NONE)
                .key("ec-key", SoftHsmToken.KeyType.EC_P256, SoftHsmToken.CertMode.NONE)
                .key("ed-key", SoftHsmToken.KeyType.ED25519, SoftHsmToken.CertMode.NONE)
                .build();
        p11kit = P11KitServer.start(token);
    }

    @AfterAll
    static void stop() throws Exception {
        if (p11kit != null) {
            p11kit.close();
        }
        if (token != null) {
            token.close();
        }
    }

    private static Pkcs11Engine remoteEngine(String keyLabel, int threads) {
        return Pkcs11Engine.builder().name("remote-" + keyLabel)
                .uri("pkcs11:token=" + token.tokenLabel() + ";object=" + keyLabel + ";type=private?module-path="
                        + P11KitServer.CLIENT_MODULE + "&pin-source=file:" + token.pinFile())
                .certificateChain(token.certificateChain(keyLabel)).threads(threads).build();
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @CsvSource({
        "rsa-key, TLSv1.3, FD", "rsa-key, TLSv1.2, CALLBACK",
        "ec-key, TLSv1.3, CALLBACK", "ec-key, TLSv1.2, FD"})
    void shouldHandshakeWithAKeyOnARemoteToken(String keyLabel, String protocol, OffloadConfig.Notify notify)
            throws Exception {
        try (Pkcs11Engine engine = remoteEngine(keyLabel, 2)) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, engine.certificateChain())
                    .offloadConfig(OffloadConfig.builder().notify(notify).build()).protocols(protocol).build();
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
                ProcessResult r = TlsFixtures.sClient(server.port(), protocol.equals("TLSv1.3") ? "-tls1_3"
                        : "-tls1_2");
                assertTrue(r.output().contains(protocol + " TLS_"), () -> r.output() + "\nserver: "
                        + server.lastHandshakeFailure);
                assertEquals(1, ctx.offloadedOperations());
                assertEquals(1, engine.completedOperations(), "signed on the remote token");
            }
        }
    }

    @Test
    void shouldServeFromTheFallbackEngineWhileTheRemoteTokenIsDown() throws Exception {
        try (Pkcs11Engine remote = remoteEngine("ec-key", 1);
             Pkcs11Engine local = token.engineBuilder().keyLabel("ec-key")
                     .certificateChain(token.certificateChain("ec-key")).name("local-ec").build()) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(remote, remote.certificateChain())
                    .offloadConfig(OffloadConfig.builder().fallbackEngine(local).build()).protocols("TLSv1.3")
                    .build();
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
                assertTrue(TlsFixtures.sClient(server.port(), "-tls1_3").output().contains("TLSv1.3 TLS_"));
                assertEquals(1, remote.completedOperations());
                p11kit.kill();
                try {
                    for (int i = 0; i < 2; i++) {
                        ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                        assertTrue(r.output().contains("TLSv1.3 TLS_"), () -> r.output() + "\nserver: "
                                + server.lastHandshakeFailure);
                    }
                    assertTrue(local.completedOperations() >= 1, "the fallback signed on the local token");
                    assertTrue(remote.sessionFailures() >= 1);
                } finally {
                    p11kit.restart();
                }
            }
        }
    }

    /** p11-kit 0.24.1 (Debian 12) does not forward CKM_EDDSA over its RPC (pkcs11-tool through it fails the same). */
    @Test
    void shouldExplainThatThisP11KitCannotForwardEd25519() {
        IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                () -> remoteEngine("ed-key", 1));
        assertTrue(e.getMessage().contains("CKR_MECHANISM_INVALID") && e.getMessage().contains("does not forward "
                + "CKM_EDDSA"), e.getMessage());
    }

    @Test
    void shouldDecryptOnARemoteTokenForTls12StaticRsa() throws Exception {
        try (Pkcs11Engine engine = remoteEngine("rsa-key", 1)) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, engine.certificateChain())
                    .protocols("TLSv1.2").ciphers(List.of("TLS_RSA_WITH_AES_128_GCM_SHA256")).build();
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
                ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_2", "-cipher", "AES128-GCM-SHA256");
                assertTrue(r.output().contains("TLSv1.2 TLS_RSA_WITH_AES_128_GCM_SHA256"),
                        () -> r.output() + "\nserver: " + server.lastHandshakeFailure);
                assertEquals(1, engine.completedOperations(), "decrypted on the remote token");
            }
        }
    }

    @Test
    void shouldFailWithTheTokensReasonWhileTheServerIsDownAndRecoverWhenItReturns() throws Exception {
        Pkcs11Engine engine = remoteEngine("ec-key", 2);
        try {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, engine.certificateChain())
                    .protocols("TLSv1.3").build();
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
                assertTrue(TlsFixtures.sClient(server.port(), "-tls1_3").output().contains("TLSv1.3 TLS_"));

                p11kit.kill();
                for (int i = 0; i < 3; i++) {
                    ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                    assertFalse(r.output().contains("TLSv1.3 TLS_"), r.output());
                }
                Loops.await("the server saw the failed handshakes", () -> server.handshakeFailures.get() == 3);
                StringBuilder cause = new StringBuilder();
                for (Throwable t = server.lastHandshakeFailure; t != null; t = t.getCause()) {
                    cause.append(t).append('\n');
                }
                // The first operation meets CKR_DEVICE_ERROR; once the module is re-initialised without the server, the token
                // is missing from the slot list: both say which token and why.
                assertTrue(cause.indexOf("lost the session: CKR_DEVICE_ERROR") >= 0
                        || cause.indexOf("cannot open a session on the token") >= 0, cause.toString());
                assertTrue(engine.sessionFailures() >= 1, "counted: " + engine.sessionFailures());

                p11kit.restart();
                int failedAfterRestart = 0;
                boolean served = false;
                for (int i = 0; i < 4 && !served; i++) {
                    served = TlsFixtures.sClient(server.port(), "-tls1_3").output().contains("TLSv1.3 TLS_");
                    if (!served) {
                        failedAfterRestart++;
                    }
                }
                assertTrue(served, "no handshake succeeded after p11-kit server came back; last failure: "
                        + server.lastHandshakeFailure);
                assertTrue(failedAfterRestart <= 1, "at most the first handshake after the restart may fail: "
                        + failedAfterRestart);
                assertTrue(engine.moduleReinitializations() >= 1);
            }
        } finally {
            engine.close();
        }
        assertEquals(0, engine.openSessions(), "no session left open after close");
    }
}
