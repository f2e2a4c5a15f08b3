package io.asyncctx.frameworks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.LeakCheck;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * {@link SniTlsServer}, Netty's stock {@code SniHandler} over a {@code DomainWildcardMappingBuilder} of three
 * offloading contexts, seen from outside with {@code openssl s_client -servername}: each name is served its own
 * certificate (RSA-2048, P-256, or the default's), and the key operation is counted on that name's context and no
 * other; {@code SniHandler}'s handshake timeout closes a silent client and a paused handshake; a flooding client
 * during a paused handshake is held to the kernel's buffers; nothing stays bound or in flight after close. The timeout
 * and flood checks are {@link FrameworkChecks}'.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SniFrameworkTest {

    private static final long HANDSHAKE_TIMEOUT_MILLIS = FrameworkChecks.HANDSHAKE_TIMEOUT.toMillis();

    private static X509Bundle rsaCert;
    private static X509Bundle ecCert;
    private static X509Bundle fallbackCert;
    private static SoftwareEngine rsaEngine;
    private static SoftwareEngine ecEngine;
    private static SoftwareEngine fallbackEngine;

    @BeforeAll
    static void certificates() throws Exception {
        rsaCert = ExampleTls.selfSigned(SniTlsServer.RSA_NAME, CertificateBuilder.Algorithm.rsa2048);
        ecCert = ExampleTls.selfSigned("www.ec.example.test", CertificateBuilder.Algorithm.ecp256);
        fallbackCert = ExampleTls.selfSigned("localhost", CertificateBuilder.Algorithm.ecp256);
        rsaEngine = ExampleTls.engine(rsaCert);
        ecEngine = ExampleTls.engine(ecCert);
        fallbackEngine = ExampleTls.engine(fallbackCert);
    }

    @AfterAll
    static void closeEngines() {
        rsaEngine.close();
        ecEngine.close();
        fallbackEngine.close();
    }

    private static AsyncSslContext rsa() throws Exception {
        return ExampleTls.context(rsaEngine, rsaCert, "http/1.1");
    }

    private static AsyncSslContext ec() throws Exception {
        return ExampleTls.context(ecEngine, ecCert, "http/1.1");
    }

    private static AsyncSslContext fallback() throws Exception {
        return ExampleTls.context(fallbackEngine, fallbackCert, "http/1.1");
    }

    private static void assertServed(Peers.Result r, String cn) {
        assertEquals(0, r.exitCode(), r.output());
        String flat = r.output().replace(" = ", "=");
        assertTrue(flat.contains("subject=CN=" + cn), "served certificate is not CN=" + cn + ":\n" + r.output());
        assertTrue(r.output().contains("served CN=" + cn), "the server's answer:\n" + r.output());
    }

    @Test
    void shouldServeEachNameWithItsOwnContextAndCountTheKeyOperationThere() throws Exception {
        AsyncSslContext rsa = rsa();
        AsyncSslContext ec = ec();
        AsyncSslContext fallback = fallback();
        List<AsyncSslContext> all = List.of(rsa, ec, fallback);
        try (SniTlsServer server = SniTlsServer.start(rsa, ec, fallback, 0, 30_000)) {
            int fdsBefore = Peers.openFds();

            assertServed(Peers.sClient(server.port(), SniTlsServer.RSA_NAME), SniTlsServer.RSA_NAME);
            assertEquals(List.of(1L, 0L, 0L), all.stream().map(AsyncSslContext::offloadedOperations).toList());

            assertServed(Peers.sClient(server.port(), "www.ec.example.test"), "www.ec.example.test");
            assertEquals(List.of(1L, 1L, 0L), all.stream().map(AsyncSslContext::offloadedOperations).toList());

            assertServed(Peers.sClient(server.port(), "api.ec.example.test"), "www.ec.example.test");
            assertEquals(List.of(1L, 2L, 0L), all.stream().map(AsyncSslContext::offloadedOperations).toList());

            assertServed(Peers.sClient(server.port(), null), "localhost");
            assertEquals(List.of(1L, 2L, 1L), all.stream().map(AsyncSslContext::offloadedOperations).toList());

            assertServed(Peers.sClient(server.port(), "other.example.test"), "localhost");
            assertEquals(List.of(1L, 2L, 2L), all.stream().map(AsyncSslContext::offloadedOperations).toList());

            System.out.printf("sni: 5 full handshakes (s_client), key operations offloaded rsa/ec/default = "
                    + "%d/%d/%d, inline %d, detached %d%n", rsa.offloadedOperations(), ec.offloadedOperations(),
                    fallback.offloadedOperations(), all.stream().mapToLong(AsyncSslContext::inlineOperations).sum(),
                    all.stream().mapToLong(AsyncSslContext::detachedOperations).sum());
            for (AsyncSslContext c : all) {
                assertEquals(0, c.inlineOperations());
                assertEquals(0, c.detachedOperations(), "SniHandler calls newHandler: every channel binds itself");
            }
            Peers.await("every channel unbound", () -> all.stream().allMatch(c -> c.boundChannels() == 0
                    && c.operationsInFlight() == 0));
            Peers.awaitFds(fdsBefore);
        }
    }

    @Test
    void shouldCloseASilentClientAtSniHandlersHandshakeTimeout() throws Exception {
        AsyncSslContext rsa = rsa();
        try (SniTlsServer server = SniTlsServer.start(rsa, ec(), fallback(), 0, HANDSHAKE_TIMEOUT_MILLIS)) {
            FrameworkChecks.silentClientClosedAtHandshakeTimeout("sni", "timeout", server.port());
        }
    }

    @Test
    void shouldCloseAPausedHandshakeAtSniHandlersHandshakeTimeoutAndCancelItsOperation() throws Exception {
        try (FaultInjectingEngine gate = FrameworkChecks.gate(rsaCert)) {
            AsyncSslContext rsa = hangingRsa(gate);
            try (SniTlsServer server = SniTlsServer.start(rsa, ec(), fallback(), 0, HANDSHAKE_TIMEOUT_MILLIS)) {
                FrameworkChecks.pausedHandshakeClosedAtHandshakeTimeout("sni", "timeout",
                        server.port(), SniTlsServer.RSA_NAME, gate, rsa, () -> { });
            }
        }
    }

    @Test
    void shouldHoldAFloodingClientsReadsWhileItsHandshakeIsPaused() throws Exception {
        try (FaultInjectingEngine gate = FrameworkChecks.gate(rsaCert)) {
            AsyncSslContext rsa = hangingRsa(gate);
            try (SniTlsServer server = SniTlsServer.start(rsa, ec(), fallback(), 0, 60_000)) {
                FrameworkChecks.floodingClientHeldWhileItsHandshakeIsPaused("sni", server.port(),
                        SniTlsServer.RSA_NAME, gate, rsa, () -> { });
            }
        }
    }

    /** The RSA name's context on {@code gate}: a handshake for that name pauses; the other names are served. */
    private static AsyncSslContext hangingRsa(FaultInjectingEngine gate) throws Exception {
        return FrameworkChecks.hangingContext(gate, rsaCert, Duration.ZERO);
    }
}
