package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsFixtures.ProcessResult;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.netty.pkitesting.X509Bundle;

import java.io.OutputStream;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Cancellation and deadlines through real TLS: a client that leaves while its handshake's operation is in the engine
 * makes the engine's session cancel it; an operation that outlives its deadline fails the handshake with an
 * {@link AsyncOffloadTimeoutException} naming the timeout. Both leave no job, registration or fd behind.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RobustCancelDeadlineTest {

    private static X509Bundle cert;
    private static byte[] hello;

    @BeforeAll
    static void setUp() throws Exception {
        cert = TlsFixtures.certificate(KeyKind.RSA);
        hello = RobustClients.clientHello();
    }

    private static FaultInjectingEngine hangingEngine() {
        return FaultInjectingEngine.builder().name("hanging").hangRate(1.0)
                .signer(new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(), null))
                .build();
    }

    @ParameterizedTest
    @EnumSource(value = Transport.class, names = {"EPOLL", "NIO"})
    void shouldCancelTheEngineOperationWhenTheClientDisconnectsMidOffload(Transport transport) throws Exception {
        int fdsBefore = Loops.openFds();
        try (FaultInjectingEngine engine = hangingEngine()) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                    .offloadConfig(OffloadConfig.builder().operationTimeout(Duration.ZERO).build()).build();
            try (RobustTlsServer server = new RobustTlsServer(transport, 1, ctx)) {
                try (Socket s = RobustClients.socket(server.port())) {
                    OutputStream out = s.getOutputStream();
                    out.write(hello);
                    out.flush();
                    Loops.await("the engine holds the operation", () -> engine.hung() == 1);
                    assertEquals(0, engine.cancelled(), "nothing cancelled while the client is there");
                    assertEquals(1, server.sum(AsyncOffloadLoops::jobsInFlight));
                }
                Loops.await("the engine's operation is cancelled", () -> engine.cancelled() == 1);
                Loops.await("the loop holds nothing", server::loopsIdle);
                assertEquals(0, engine.inFlight());
                assertEquals(1, server.sum(AsyncOffloadLoops::jobsCancelled));
                // The handshake's outcome is recorded by a listener that may run just after the loop went idle.
                Loops.await("the handshake is recorded as ended by the peer",
                        () -> server.count(RobustTlsServer.Outcome.PEER_CLOSED) == 1);
                assertEquals(1, server.count(RobustTlsServer.Outcome.PEER_CLOSED), () -> "" + server.failures);
            }
        }
        Loops.awaitFds(fdsBefore);
    }

    @ParameterizedTest
    @EnumSource(value = Transport.class, names = {"EPOLL", "NIO"})
    void shouldFailTheHandshakeWithAMessageNamingTheTimeoutWhenTheDeadlinePasses(Transport transport)
            throws Exception {
        int fdsBefore = Loops.openFds();
        try (FaultInjectingEngine engine = hangingEngine()) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                    .offloadConfig(OffloadConfig.builder().operationTimeout(Duration.ofMillis(200)).build()).build();
            try (RobustTlsServer server = new RobustTlsServer(transport, 1, ctx)) {
                ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                assertFalse(r.output().contains("TLSv1.3 TLS_"), r.output());
                Loops.await("the handshake failed", () -> server.handshakesEnded() == 1);
                assertEquals(1, server.count(RobustTlsServer.Outcome.TIMEOUT), () -> "" + server.failures);
                Throwable failure = server.failures.get(0);
                assertTrue(TlsEngineFailureTest.causeChainMentions(failure, "within the operation timeout of 200 ms"),
                        () -> "the handshake failure names the timeout: " + chain(failure));
                assertTrue(TlsEngineFailureTest.causeChainMentions(failure, "'hanging'"),
                        () -> "and the engine: " + chain(failure));
                Loops.await("the timed-out operation is cancelled in the engine", () -> engine.cancelled() == 1);
                assertEquals(1, server.sum(AsyncOffloadLoops::operationTimeouts));
                Loops.await("the loop holds nothing", server::loopsIdle);
                assertTrue(TlsFixtures.curl(server.port(), "-o", "/dev/null", "-w", "%{http_code}").exitCode() != 0,
                        "every handshake hangs until its deadline here, so curl fails too");
            }
        }
        Loops.awaitFds(fdsBefore);
    }

    static String chain(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            sb.append(c).append(" <- ");
            for (Throwable s : c.getSuppressed()) {
                sb.append("[suppressed ").append(s).append("] ");
            }
        }
        return sb.toString();
    }
}
