package io.asyncctx.frameworks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.AsyncSslContextBuilder;
import io.asyncctx.netty.OffloadConfig;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.asyncctx.testkit.FloodingPeer;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.pkitesting.X509Bundle;

import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.List;

/**
 * The checks the framework tests share, each run against a server the test started on a port: full handshakes from
 * curl and h2load, a silent client and a paused handshake closed at the framework's handshake timeout, and a client
 * that floods while its handshake is paused. Each framework test states its own setup (the server, the context, the
 * name it sends) and what it expects beyond these; the numbers and bounds live here, once. {@code framework} labels
 * the lines the checks print (and names the framework in their messages).
 *
 * <p>Threading: static helpers for the test thread.
 */
final class FrameworkChecks {

    /** The handshake timeout the tests give the servers for the timeout checks. */
    static final Duration HANDSHAKE_TIMEOUT = Duration.ofSeconds(2);

    private FrameworkChecks() {
    }

    /** More assertions a test makes at a point of a shared check. */
    @FunctionalInterface
    interface Check {
        void run() throws Exception;
    }

    /** What a test does with the bytes a flooding client got in, while its handshake is still paused. */
    @FunctionalInterface
    interface FloodCheck {
        void written(long bytes) throws Exception;
    }

    /** An engine whose every key operation hangs until {@code completeHung()}, signing with {@code cert}'s key. */
    static FaultInjectingEngine gate(X509Bundle cert) {
        return FaultInjectingEngine.builder().name("gate").hangRate(1.0)
                .signer(new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(), null))
                .build();
    }

    /**
     * A server context on {@code gate} for {@code cert}, whose operations time out after {@code deadline}
     * ({@link Duration#ZERO}: never); with ALPN when {@code alpn} names protocols.
     */
    static AsyncSslContext hangingContext(FaultInjectingEngine gate, X509Bundle cert, Duration deadline,
                                          String... alpn) throws Exception {
        AsyncSslContextBuilder b = AsyncSslContextBuilder.forServer(gate, cert.getCertificate())
                .offloadConfig(OffloadConfig.builder().operationTimeout(deadline).build());
        if (alpn.length > 0) {
            b.applicationProtocolConfig(new ApplicationProtocolConfig(ApplicationProtocolConfig.Protocol.ALPN,
                    ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
                    ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT, alpn));
        }
        return b.build();
    }

    /**
     * Full handshakes against an HTTPS server that speaks h2 and HTTP/1.1: curl 3 times over each (every answer
     * checked for {@code http1Answer} or {@code http2Answer}), then h2load with 4 clients and 40 requests, all of
     * which must succeed and whose output must hold {@code h2loadOutput}. Then every handshake must have been
     * offloaded on the bound path (the framework calls {@code newHandler}): one key operation each, none inline or
     * detached, and nothing stays bound, in flight or open.
     */
    static void everyFullHandshakeOfCurlAndH2loadOffloaded(String framework, AsyncSslContext ctx, int port,
                                                           String http1Answer, String http2Answer,
                                                           String... h2loadOutput) throws Exception {
        int fdsBefore = Peers.openFds();
        int handshakes = 0;
        for (int i = 0; i < 3; i++) {
            Peers.Result r = Peers.curl(port, "--http1.1");
            assertEquals(0, r.exitCode(), r.output());
            assertTrue(r.output().contains(http1Answer), r.output());
            handshakes++;
        }
        for (int i = 0; i < 3; i++) {
            Peers.Result r = Peers.curl(port, "--http2");
            assertEquals(0, r.exitCode(), r.output());
            assertTrue(r.output().contains(http2Answer), r.output());
            handshakes++;
        }
        int clients = 4;
        Peers.Result h2load = Peers.run(List.of("h2load", "-n", "40", "-c", Integer.toString(clients),
                "https://127.0.0.1:" + port + "/"), null, 60);
        assertEquals(0, h2load.exitCode(), h2load.output());
        assertTrue(h2load.output().contains("40 succeeded"), h2load.output());
        for (String expected : h2loadOutput) {
            assertTrue(h2load.output().contains(expected), h2load.output());
        }
        handshakes += clients;

        System.out.printf("%s: %d full handshakes (curl 3 x h1, 3 x h2, h2load %d clients), "
                        + "%d key operations offloaded, %d inline, %d detached%n", framework, handshakes,
                clients, ctx.offloadedOperations(), ctx.inlineOperations(), ctx.detachedOperations());
        assertEquals(handshakes, ctx.offloadedOperations(), "one offloaded key operation per full handshake");
        assertEquals(0, ctx.inlineOperations());
        assertEquals(0, ctx.detachedOperations(), framework + " calls newHandler: every channel binds itself");
        Peers.await("every channel unbound", () -> ctx.boundChannels() == 0);
        assertEquals(0, ctx.operationsInFlight());
        Peers.awaitFds(fdsBefore);
    }

    /**
     * A client that connects and sends nothing: the server must close it at its handshake timeout
     * ({@link #HANDSHAKE_TIMEOUT}, named {@code timeoutName} in the framework), after 1.5 s and within 15 s.
     */
    static void silentClientClosedAtHandshakeTimeout(String framework, String timeoutName, int port)
            throws Exception {
        try (SocketChannel silent = Peers.connect(port)) {
            long start = System.nanoTime();
            assertTrue(FloodingPeer.awaitClosedByServer(silent, Duration.ofSeconds(30)), "never closed");
            closedAtHandshakeTimeout(framework + ": silent client", timeoutName, Peers.secondsSince(start));
        }
    }

    /**
     * A client whose ClientHello (naming {@code sni} unless null) makes a key operation that hangs in {@code gate}:
     * while it waits, the channel is bound to {@code ctx} (and {@code whilePaused} holds); the server must close the
     * connection at its handshake timeout, after 1.5 s and within 15 s, unbind the channel and cancel the operation.
     */
    static void pausedHandshakeClosedAtHandshakeTimeout(String framework, String timeoutName, int port, String sni,
                                                        FaultInjectingEngine gate, AsyncSslContext ctx,
                                                        Check whilePaused) throws Exception {
        try (SocketChannel client = Peers.connect(port)) {
            long start = System.nanoTime();
            FloodingPeer.writeFully(client, Peers.clientHello(sni));
            Peers.await("the key operation waits in the engine", () -> gate.hung() == 1);
            assertEquals(1, ctx.boundChannels());
            whilePaused.run();
            assertTrue(FloodingPeer.awaitClosedByServer(client, Duration.ofSeconds(30)), "never closed");
            closedAtHandshakeTimeout(framework + ": paused handshake", timeoutName, Peers.secondsSince(start));
            Peers.await("the channel unbound and its operation cancelled",
                    () -> ctx.boundChannels() == 0 && ctx.operationsInFlight() == 0);
            assertEquals(1, gate.cancelled(), "the paused operation was cancelled when the channel closed");
        }
    }

    private static void closedAtHandshakeTimeout(String what, String timeoutName, double seconds) {
        System.out.printf("%s closed after %.2f s (%s %s)%n", what, seconds, timeoutName, HANDSHAKE_TIMEOUT);
        assertTrue(seconds > 1.5, "closed after " + seconds + " s, before the handshake timeout");
        assertTrue(seconds < 15, "closed after " + seconds + " s");
    }

    /**
     * A client that floods while its handshake is paused, on the bound path: it must get less than
     * {@link Peers#FLOOD_LIMIT} into the server (the read hold leaves it the kernel's buffers), the handshake stays
     * paused (and {@code whilePaused} holds); once the operation completes the server closes it, and nothing stays
     * bound, in flight or open.
     */
    static void floodingClientHeldWhileItsHandshakeIsPaused(String framework, int port, String sni,
                                                             FaultInjectingEngine gate, AsyncSslContext ctx,
                                                             Check whilePaused) throws Exception {
        int fdsBefore = Peers.openFds();
        flood(port, sni, gate, written -> {
            System.out.printf("%s: flooding client got %.2f MB into a paused handshake%n", framework,
                    written / 1048576.0);
            assertTrue(written < Peers.FLOOD_LIMIT, "the flooder got " + written + " bytes into a paused handshake");
            whilePaused.run();
        });
        Peers.await("the channel unbound", () -> ctx.boundChannels() == 0 && ctx.operationsInFlight() == 0);
        Peers.awaitFds(fdsBefore);
    }

    /**
     * A client whose ClientHello (naming {@code sni} unless null) makes a key operation that hangs in {@code gate}
     * floods the server (at most {@link Peers#FLOOD_CAP} in {@link Peers#FLOOD_MAX}); {@code whilePaused} gets what it
     * wrote, the handshake must still be paused; then the operation completes, and the server must read on, meet the
     * junk and close the connection.
     *
     * @return the bytes the flooder wrote
     */
    static long flood(int port, String sni, FaultInjectingEngine gate, FloodCheck whilePaused) throws Exception {
        try (SocketChannel flooder = Peers.connect(port)) {
            FloodingPeer.writeFully(flooder, Peers.clientHello(sni));
            Peers.await("the flooder's key operation waits in the engine", () -> gate.hung() == 1);
            long written = FloodingPeer.flood(flooder, Peers.FLOOD_CAP, Peers.FLOOD_MAX, Peers.FLOOD_STALL);
            whilePaused.written(written);
            assertEquals(1, gate.hung(), "still paused during the flood");
            // Let it go: the server reads on, meets the junk and closes.
            assertEquals(1, gate.completeHung());
            assertTrue(FloodingPeer.awaitClosedByServer(flooder, Duration.ofSeconds(20)),
                    "the server closed the flooder after reading its junk");
            return written;
        }
    }
}
