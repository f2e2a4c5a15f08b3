package io.asyncctx.frameworks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.LeakCheck;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.asyncctx.testkit.FloodingPeer;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCalls;
import io.netty.handler.ssl.SslContext;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.ReferenceCountUtil;

import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * {@link GrpcTlsServer}, gRPC-Java's own {@code NettyServerBuilder.sslContext(ctx)}, seen from outside with a
 * grpc-java client (a new channel and a new client context per call, so every call makes a full handshake): every
 * key operation is offloaded, on the detached path (gRPC wraps {@code newEngine} in an {@code SslHandler} of its
 * own); gRPC's handshake timeout closes a silent client and a paused handshake. On this path nothing holds a flooding
 * client's reads while its handshake waits: the flood test measures what the server takes and reports it.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class GrpcFrameworkTest {

    private static final Duration HANDSHAKE_TIMEOUT = FrameworkChecks.HANDSHAKE_TIMEOUT;

    private static X509Bundle cert;

    @BeforeAll
    static void certificate() throws Exception {
        cert = ExampleTls.selfSigned("localhost", CertificateBuilder.Algorithm.ecp256);
    }

    private static ManagedChannel channel(int port, SslContext clientCtx) {
        return NettyChannelBuilder.forAddress("127.0.0.1", port).overrideAuthority("localhost")
                .sslContext(clientCtx).build();
    }

    private static SslContext clientContext() throws Exception {
        // A new context per channel: its session cache is empty, so the handshake is a full one.
        return GrpcSslContexts.forClient().trustManager(cert.getCertificate()).build();
    }

    private static void shutdown(ManagedChannel ch) throws InterruptedException {
        ch.shutdownNow();
        assertTrue(ch.awaitTermination(20, TimeUnit.SECONDS), "the client channel did not terminate");
    }

    @Test
    void shouldOffloadEveryFullHandshakeOfUnaryAndStreamingCalls() throws Exception {
        try (SoftwareEngine engine = ExampleTls.engine(cert)) {
            AsyncSslContext ctx = ExampleTls.context(engine, cert, "h2");
            Server server = GrpcTlsServer.start(ctx, 0, Duration.ofSeconds(30));
            int handshakes = 0;
            try {
                for (int i = 0; i < 3; i++) {
                    SslContext clientCtx = clientContext();
                    ManagedChannel ch = channel(server.getPort(), clientCtx);
                    try {
                        String reply = ClientCalls.blockingUnaryCall(ch, GreeterService.HELLO,
                                CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), "world " + i);
                        assertEquals("hello world " + i, reply);
                        handshakes++;
                    } finally {
                        shutdown(ch);
                        ReferenceCountUtil.release(clientCtx);
                    }
                }
                for (int i = 0; i < 2; i++) {
                    SslContext clientCtx = clientContext();
                    ManagedChannel ch = channel(server.getPort(), clientCtx);
                    try {
                        List<String> replies = new ArrayList<>();
                        ClientCalls.blockingServerStreamingCall(ch, GreeterService.COUNT,
                                CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), "5")
                                .forEachRemaining(replies::add);
                        assertEquals(List.of("1", "2", "3", "4", "5"), replies);
                        handshakes++;
                    } finally {
                        shutdown(ch);
                        ReferenceCountUtil.release(clientCtx);
                    }
                }
                System.out.printf("grpc: %d full handshakes (3 unary, 2 streaming, a new channel each), %d key "
                                + "operations offloaded, %d of them detached, %d inline%n", handshakes,
                        ctx.offloadedOperations(), ctx.detachedOperations(), ctx.inlineOperations());
                assertEquals(handshakes, ctx.offloadedOperations(), "one offloaded key operation per full handshake");
                assertEquals(handshakes, ctx.detachedOperations(), "gRPC wraps newEngine: the detached path");
                assertEquals(0, ctx.inlineOperations());
                assertEquals(0, ctx.boundChannels(), "nothing binds on the detached path");
                Peers.await("no operation in flight", () -> ctx.operationsInFlight() == 0);
            } finally {
                server.shutdownNow();
                assertTrue(server.awaitTermination(20, TimeUnit.SECONDS));
            }
        }
    }

    @Test
    void shouldCloseASilentClientAtGrpcsHandshakeTimeout() throws Exception {
        try (SoftwareEngine engine = ExampleTls.engine(cert)) {
            AsyncSslContext ctx = ExampleTls.context(engine, cert, "h2");
            Server server = GrpcTlsServer.start(ctx, 0, HANDSHAKE_TIMEOUT);
            try {
                FrameworkChecks.silentClientClosedAtHandshakeTimeout("grpc", "handshakeTimeout", server.getPort());
                assertEquals(0, ctx.offloadedOperations());
            } finally {
                server.shutdownNow();
                assertTrue(server.awaitTermination(20, TimeUnit.SECONDS));
            }
        }
    }

    /**
     * A paused handshake is closed by gRPC's timeout, well before the operation's deadline: gRPC closes through
     * {@code SslHandler}, which cannot flush its close_notify while a delegated task is pending and so closes after
     * its {@code closeNotifyFlushTimeout} (3 s) more. The detached path has no channel to watch, but it finds the engine
     * that the closed handler freed and cancels the operation soon after, well before its deadline: the engine is told
     * to drop the work. Measured and checked.
     */
    @Test
    void shouldCloseAPausedHandshakeAtGrpcsHandshakeTimeoutAndCancelItsOperation() throws Exception {
        Duration deadline = Duration.ofSeconds(12);
        try (FaultInjectingEngine gate = gate()) {
            AsyncSslContext ctx = hangingContext(gate, deadline);
            Server server = GrpcTlsServer.start(ctx, 0, HANDSHAKE_TIMEOUT);
            try (SocketChannel client = Peers.connect(server.getPort())) {
                long start = System.nanoTime();
                FloodingPeer.writeFully(client, Peers.clientHello(null));
                Peers.await("the key operation waits in the engine", () -> gate.hung() == 1);
                assertEquals(1, ctx.operationsInFlight());
                assertEquals(1, ctx.detachedOperations());
                assertTrue(FloodingPeer.awaitClosedByServer(client, Duration.ofSeconds(30)), "never closed");
                double closed = Peers.secondsSince(start);
                long inFlightAtClose = ctx.operationsInFlight();
                Peers.await("the operation ended", () -> ctx.operationsInFlight() == 0);
                double ended = Peers.secondsSince(start);
                System.out.printf("grpc: paused handshake closed after %.2f s (handshakeTimeout %s); operations in "
                                + "flight right after the close: %d; the operation ended after %.2f s (deadline %s), "
                                + "engine cancels: %d%n", closed, HANDSHAKE_TIMEOUT, inFlightAtClose, ended, deadline,
                        gate.cancelled());
                assertTrue(closed > 1.5, "closed after " + closed + " s, before the handshake timeout");
                assertTrue(closed < 9, "closed after " + closed + " s: not by gRPC's timeout (2 s, plus SslHandler's "
                        + "3 s close_notify flush timeout) but by the operation's deadline (12 s)");
                assertTrue(ended < closed + 3, "the operation ended " + (ended - closed) + " s after the close: not "
                        + "cancelled when its engine was freed (its deadline is " + deadline + ")");
                Peers.await("the engine was told to drop the work", () -> gate.cancelled() == 1);
                assertEquals(0, ctx.boundChannels());
            } finally {
                server.shutdownNow();
                assertTrue(server.awaitTermination(20, TimeUnit.SECONDS));
            }
        }
    }

    /**
     * What a flooding client gets into a paused handshake on gRPC's path: no per-channel read hold exists there, so
     * this measures and reports rather than asserting the plain path's bound; it checks that the server survives it,
     * closes the flooder once the operation completes, and serves a real call afterwards.
     */
    @Test
    void shouldReportWhatAFloodingClientGetsIntoAPausedDetachedHandshake() throws Exception {
        try (FaultInjectingEngine gate = gate()) {
            AsyncSslContext ctx = hangingContext(gate, Duration.ZERO);
            Server server = GrpcTlsServer.start(ctx, 0, Duration.ofSeconds(60));
            try {
                long written = FrameworkChecks.flood(server.getPort(), null, gate, w -> System.out.printf(
                        "grpc (detached, no read hold): flooding client got %.2f MB into a paused handshake (cap %d "
                                + "MB in %s; bound path: about 4 MB)%n", w / 1048576.0, Peers.FLOOD_CAP >> 20,
                        Peers.FLOOD_MAX));
                assertTrue(written > 0);
                Peers.await("no operation in flight", () -> ctx.operationsInFlight() == 0);
            } finally {
                server.shutdownNow();
                assertTrue(server.awaitTermination(20, TimeUnit.SECONDS));
            }
        }
    }

    private static FaultInjectingEngine gate() {
        return FrameworkChecks.gate(cert);
    }

    private static AsyncSslContext hangingContext(FaultInjectingEngine gate, Duration deadline) throws Exception {
        return FrameworkChecks.hangingContext(gate, cert, deadline, "h2");
    }
}
