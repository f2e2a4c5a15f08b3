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
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;

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
 * {@link SniTlsServer}, Netty's stock {@code SniHandler} over a {@code DomainWildcardMappingBuilder} of three
 * offloading contexts, seen from outside with {@code openssl s_client -servername}: each name is served its own
 * certificate (RSA-2048, P-256, or the default's), and the key operation is counted on that name's context and no
 * other; {@code SniHandler}'s handshake timeout closes a silent client and a paused handshake; a flooding client
 * during a paused handshake is held to the kernel's buffers; nothing stays bound or in flight after close.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SniFrameworkTest {

    private static final long HANDSHAKE_TIMEOUT_MILLIS = 2_000;

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
        try (SniTlsServer server = SniTlsServer.start(rsa, ec(), fallback(), 0, HANDSHAKE_TIMEOUT_MILLIS);
             SocketChannel silent = Peers.connect(server.port())) {
            long start = System.nanoTime();
            assertTrue(FloodingPeer.awaitClosedByServer(silent, Duration.ofSeconds(30)), "never closed");
            double seconds = Peers.secondsSince(start);
            System.out.printf("sni: silent client closed after %.2f s (timeout %d ms)%n", seconds,
                    HANDSHAKE_TIMEOUT_MILLIS);
            assertTrue(seconds > 1.5, "closed after " + seconds + " s, before the handshake timeout");
            assertTrue(seconds < 15, "closed after " + seconds + " s");
        }
    }

    @Test
    void shouldCloseAPausedHandshakeAtSniHandlersHandshakeTimeoutAndCancelItsOperation() throws Exception {
        try (FaultInjectingEngine gate = gate()) {
            AsyncSslContext rsa = hangingRsa(gate);
            try (SniTlsServer server = SniTlsServer.start(rsa, ec(), fallback(), 0, HANDSHAKE_TIMEOUT_MILLIS);
                 SocketChannel client = Peers.connect(server.port())) {
                long start = System.nanoTime();
                FloodingPeer.writeFully(client, Peers.clientHello(SniTlsServer.RSA_NAME));
                Peers.await("the key operation waits in the engine", () -> gate.hung() == 1);
                assertEquals(1, rsa.boundChannels());
                assertTrue(FloodingPeer.awaitClosedByServer(client, Duration.ofSeconds(30)), "never closed");
                double seconds = Peers.secondsSince(start);
                System.out.printf("sni: paused handshake closed after %.2f s (timeout %d ms)%n", seconds,
                        HANDSHAKE_TIMEOUT_MILLIS);
                assertTrue(seconds > 1.5, "closed after " + seconds + " s, before the handshake timeout");
                assertTrue(seconds < 15, "closed after " + seconds + " s");
                Peers.await("the channel unbound and its operation cancelled",
                        () -> rsa.boundChannels() == 0 && rsa.operationsInFlight() == 0);
                assertEquals(1, gate.cancelled());
            }
        }
    }

    @Test
    void shouldHoldAFloodingClientsReadsWhileItsHandshakeIsPaused() throws Exception {
        try (FaultInjectingEngine gate = gate()) {
            AsyncSslContext rsa = hangingRsa(gate);
            try (SniTlsServer server = SniTlsServer.start(rsa, ec(), fallback(), 0, 60_000)) {
                int fdsBefore = Peers.openFds();
                try (SocketChannel flooder = Peers.connect(server.port())) {
                    FloodingPeer.writeFully(flooder, Peers.clientHello(SniTlsServer.RSA_NAME));
                    Peers.await("the flooder's key operation waits in the engine", () -> gate.hung() == 1);
                    long written = FloodingPeer.flood(flooder, Peers.FLOOD_CAP, Peers.FLOOD_MAX, Peers.FLOOD_STALL);
                    System.out.printf("sni: flooding client got %.2f MB into a paused handshake%n",
                            written / 1048576.0);
                    assertTrue(written < Peers.FLOOD_LIMIT, "the flooder got " + written
                            + " bytes into a paused handshake");
                    assertEquals(1, gate.hung(), "still paused during the flood");
                    assertEquals(1, gate.completeHung());
                    assertTrue(FloodingPeer.awaitClosedByServer(flooder, Duration.ofSeconds(20)),
                            "the server closed the flooder after reading its junk");
                }
                Peers.await("the channel unbound", () -> rsa.boundChannels() == 0 && rsa.operationsInFlight() == 0);
                Peers.awaitFds(fdsBefore);
            }
        }
    }

    private static FaultInjectingEngine gate() {
        return FaultInjectingEngine.builder().name("gate").hangRate(1.0)
                .signer(new JcaKeySigner(rsaCert.getKeyPair().getPrivate(), rsaCert.getKeyPair().getPublic(), null))
                .build();
    }

    private static AsyncSslContext hangingRsa(FaultInjectingEngine gate) throws Exception {
        return AsyncSslContextBuilder.forServer(gate, rsaCert.getCertificate())
                .offloadConfig(OffloadConfig.builder().operationTimeout(Duration.ZERO).build()).build();
    }
}
