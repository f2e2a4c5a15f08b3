package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsFixtures.ProcessResult;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.netty.pkitesting.X509Bundle;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The fallback engine through real TLS: an operation that the primary ends in ERR (a failed job, or status ERR at
 * submit) or with EAGAIN exhausted runs again on the fallback and the handshake completes; it is counted per loop; an
 * unhealthy primary is skipped for a cooldown and then probed; a deadline does not fall back; the fallback's wait fds
 * leave with the connection.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RobustFallbackTest {

    private static X509Bundle cert;
    private static SoftwareEngine fallback;

    @BeforeAll
    static void setUp() throws Exception {
        cert = TlsFixtures.certificate(KeyKind.RSA);
        // PER_CTX, so that each connection holds a second eventfd of its own while it falls back.
        fallback = SoftwareEngine.builder().keyPair(cert.getKeyPair()).workers(1).fdMode(FdMode.PER_CTX)
                .name("fallback").build();
    }

    @AfterAll
    static void tearDown() {
        fallback.close();
    }

    private static KeySigner signer() {
        return new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(), null);
    }

    private static FaultInjectingEngine primary(UnaryOperator<FaultInjectingEngine.Builder> faults) {
        return faults.apply(FaultInjectingEngine.builder().name("primary").signer(signer())).build();
    }

    private static AsyncSslContext context(FaultInjectingEngine primary, OffloadConfig.Builder config)
            throws Exception {
        return AsyncSslContextBuilder.forServer(primary, cert.getCertificate())
                .offloadConfig(config.fallbackEngine(fallback).build()).build();
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @CsvSource({
        "EPOLL, FD, failed",
        "EPOLL, FD, statusErr",
        "EPOLL, FD, eagain",
        "NIO, CALLBACK, failed",
        "NIO, CALLBACK, statusErr",
        "IO_URING, FD, failed"
    })
    void shouldRunTheOperationOnTheFallbackWhenThePrimaryFails(Transport transport, OffloadConfig.Notify notify,
                                                               String fault) throws Exception {
        if (transport == Transport.IO_URING) {
            Loops.factory(Loops.Transport.IO_URING); // assumes io_uring is available
        }
        int fdsBefore = Loops.openFds();
        long fallbackBefore = fallback.operationsCompleted();
        try (FaultInjectingEngine primary = primary(b -> switch (fault) {
            case "failed" -> b.errorRate(1.0);
            case "statusErr" -> b.statusErrRate(1.0);
            default -> b.eagainRate(1.0);
        })) {
            AsyncSslContext ctx = context(primary, OffloadConfig.builder().notify(notify).eagainMaxRetries(2)
                    .eagainInitialBackoff(Duration.ofMillis(1)));
            try (RobustTlsServer server = new RobustTlsServer(transport, 1, ctx)) {
                for (int i = 1; i <= 2; i++) {
                    ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                    assertTrue(r.output().contains("TLSv1.3 TLS_"), r.output());
                    int n = i;
                    Loops.await("handshake " + n + " ended", () -> server.count(RobustTlsServer.Outcome.OK) == n);
                }
                assertEquals(2, server.sum(AsyncOffloadLoops::fallbackOperations));
                assertEquals(2, server.sum(AsyncOffloadLoops::primaryFailures));
                assertEquals(0, server.sum(AsyncOffloadLoops::primarySkips), "no unhealthy rule configured");
                assertEquals(fallbackBefore + 2, fallback.operationsCompleted(), "signed by the fallback");
                assertEquals(fault.equals("eagain") ? 6 : 2, primary.submitted(), "the primary tried each first");
                Loops.await("the loop holds nothing", server::loopsIdle);
            }
        }
        Loops.awaitFds(fdsBefore);
    }

    @Test
    void shouldSkipAnUnhealthyPrimaryForTheCooldown() throws Exception {
        try (FaultInjectingEngine primary = primary(b -> b.errorRate(1.0))) {
            // A cooldown no test run reaches: every handshake after the second failure skips the primary.
            AsyncSslContext ctx = context(primary, OffloadConfig.builder().unhealthyAfterFailures(2)
                    .unhealthyCooldown(Duration.ofHours(1)));
            try (RobustTlsServer server = new RobustTlsServer(Transport.EPOLL, 1, ctx)) {
                for (int i = 0; i < 4; i++) {
                    ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                    assertTrue(r.output().contains("TLSv1.3 TLS_"), r.output());
                }
                assertEquals(2, primary.submitted(), "two failures made the primary unhealthy; the others skipped it");
                assertEquals(2, server.sum(AsyncOffloadLoops::primarySkips));
                assertEquals(4, server.sum(AsyncOffloadLoops::fallbackOperations));
            }
        }
    }

    /**
     * After the cooldown the next handshake probes the primary again. No wall-clock bound: handshakes are made until
     * one probes it (the cooldown is short), and every one either probed it or skipped it. That the primary is
     * skipped during the cooldown is the test above (a cooldown of an hour); EngineRouterTest drives both with a
     * scripted clock.
     */
    @Test
    void shouldProbeAnUnhealthyPrimaryOnceTheCooldownHasPassed() throws Exception {
        try (FaultInjectingEngine primary = primary(b -> b.errorRate(1.0))) {
            AsyncSslContext ctx = context(primary, OffloadConfig.builder().unhealthyAfterFailures(2)
                    .unhealthyCooldown(Duration.ofMillis(200)));
            try (RobustTlsServer server = new RobustTlsServer(Transport.EPOLL, 1, ctx)) {
                int[] handshakes = {0};
                Loops.await("a handshake after the cooldown probed the primary", Duration.ofSeconds(20), () -> {
                    ProcessResult r;
                    try {
                        r = TlsFixtures.sClient(server.port(), "-tls1_3");
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                    assertTrue(r.output().contains("TLSv1.3 TLS_"), r.output());
                    handshakes[0]++;
                    return primary.submitted() == 3;
                });
                assertTrue(handshakes[0] >= 3, "two failures, then the probe: " + handshakes[0]);
                assertEquals(handshakes[0] - 3, server.sum(AsyncOffloadLoops::primarySkips),
                        "every handshake that did not try the primary skipped it");
                assertEquals(handshakes[0], server.sum(AsyncOffloadLoops::fallbackOperations));
            }
        }
    }

    @Test
    void shouldNotFallBackWhenTheDeadlinePasses() throws Exception {
        try (FaultInjectingEngine primary = primary(b -> b.hangRate(1.0))) {
            AsyncSslContext ctx = context(primary, OffloadConfig.builder().operationTimeout(Duration.ofMillis(150)));
            try (RobustTlsServer server = new RobustTlsServer(Transport.EPOLL, 1, ctx)) {
                ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                assertFalse(r.output().contains("TLSv1.3 TLS_"), r.output());
                Loops.await("the handshake failed", () -> server.handshakesEnded() == 1);
                assertEquals(1, server.count(RobustTlsServer.Outcome.TIMEOUT), () -> "" + server.failures);
                assertEquals(0, server.sum(AsyncOffloadLoops::fallbackOperations));
                assertEquals(1, server.sum(AsyncOffloadLoops::operationTimeouts));
                Loops.await("the hung operation is cancelled", () -> primary.cancelled() == 1);
            }
        }
    }

    @Test
    void shouldFailWithBothReasonsWhenTheFallbackFailsToo() throws Exception {
        try (FaultInjectingEngine primary = primary(b -> b.errorRate(1.0));
             FaultInjectingEngine broken = FaultInjectingEngine.builder().name("broken-fallback").signer(signer())
                     .statusErrRate(1.0).build()) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(primary, cert.getCertificate())
                    .offloadConfig(OffloadConfig.builder().fallbackEngine(broken).build()).build();
            try (RobustTlsServer server = new RobustTlsServer(Transport.EPOLL, 1, ctx)) {
                ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                assertFalse(r.output().contains("TLSv1.3 TLS_"), r.output());
                Loops.await("the handshake failed", () -> server.handshakesEnded() == 1);
                Throwable failure = server.failures.get(0);
                String chain = RobustCancelDeadlineTest.chain(failure);
                assertTrue(chain.contains("'broken-fallback'") && chain.contains("'primary'"), chain);
                assertEquals(1, server.count(RobustTlsServer.Outcome.ENGINE_ERROR), chain);
                assertEquals(1, server.sum(AsyncOffloadLoops::fallbackOperations));
                Loops.await("the loop holds nothing", server::loopsIdle);
            }
        }
    }

    @Test
    void shouldRefuseTheUnhealthyRuleWithoutAFallbackEngine() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> OffloadConfig.builder().unhealthyAfterFailures(3).build());
        assertTrue(e.getMessage().contains("fallbackEngine"), e.getMessage());
    }
}
