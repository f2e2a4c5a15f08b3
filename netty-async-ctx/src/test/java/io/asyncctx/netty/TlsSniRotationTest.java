package io.asyncctx.netty;

import static io.asyncctx.netty.SniFixtures.await;
import static io.asyncctx.netty.SniFixtures.cert;
import static io.asyncctx.netty.SniFixtures.softwareContext;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.netty.SniFixtures.GatedEngine;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.pkitesting.CertificateBuilder.Algorithm;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.ReferenceCountUtil;

import java.math.BigInteger;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Live rotation of a site's certificate and key through {@link AsyncSniMapping#replace}: a handshake paused at its key
 * operation on the old engine finishes on it and the engine is closed only after, new handshakes take the new pair at
 * once, and ten rotations under a load of Netty clients lose no handshake and leave no engine thread or eventfd behind.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class TlsSniRotationTest {

    private static final String NAME = "a.example.org";

    @Test
    void shouldFinishAPausedHandshakeOnTheOldKeyAndCloseTheOldEngineOnlyAfterIt() throws Exception {
        X509Bundle oldCert = cert(NAME, Algorithm.rsa2048, 100);
        GatedEngine gated = new GatedEngine(oldCert.getKeyPair());
        AsyncSslContext old = AsyncSslContextBuilder.forServer(gated, oldCert.getCertificate()).build();
        AsyncSslContext next = softwareContext(cert(NAME, Algorithm.ecp256, 101));
        EventLoopGroup clients = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        SslContext client = TlsFixtures.insecureTls13Client();
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try (AsyncSniMapping mapping = AsyncSniMapping.builder().site("a", old, NAME).build();
             SniTestServer server = new SniTestServer(TlsTestServer.Transport.EPOLL, 1, mapping)) {
            Future<BigInteger> paused = pool.submit(() -> SniFixtures.handshake(clients, client, server.port(), NAME));
            await("the old engine holds the handshake's key operation", () -> gated.held() == 1, 30_000);

            CompletableFuture<Void> closed = mapping.replace("a", next);
            assertSame(next, mapping.context(NAME));
            assertEquals(1, old.operationsInFlight());
            assertEquals(1, old.handshakesInProgress());

            // New handshakes take the new pair at once, while the old one is still paused.
            assertEquals(SniFixtures.hex(101), SniFixtures.sClientSerial(server.port(), NAME));
            assertFalse(closed.isDone(), "the old engine must stay open while its operation is in flight");
            assertFalse(gated.isClosed());
            assertEquals(1, mapping.metrics("a").retiring());

            gated.release();
            assertEquals(BigInteger.valueOf(100), paused.get(60, TimeUnit.SECONDS));
            closed.get(30, TimeUnit.SECONDS);
            assertTrue(gated.isClosed());
            assertEquals(0, mapping.metrics("a").retiring());
            assertEquals(2, mapping.metrics("a").operations()); // one on each key, summed across the rotation
            assertEquals(0, server.handshakeFailures.get(), String.valueOf(server.lastHandshakeFailure));
        } finally {
            pool.shutdownNow();
            ReferenceCountUtil.release(client);
            clients.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        }
    }

    @Test
    void shouldHandAHandlerMadeOnAReplacedContextToItsSuccessor() throws Exception {
        // The window between SniHandler's lookup and its newHandler call: the lookup returned the old context, the
        // rotation happened, then the handler is made. It must be the new context's, so that the old engine can close.
        AsyncSslContext old = softwareContext(cert(NAME, Algorithm.ecp256, 200));
        AsyncSslContext next = softwareContext(cert(NAME, Algorithm.ecp256, 201));
        try (AsyncSniMapping mapping = AsyncSniMapping.builder().site("a", old, NAME).build()) {
            SslContext looked = mapping.map(NAME);
            CompletableFuture<Void> closed = mapping.replace("a", next);
            closed.get(30, TimeUnit.SECONDS); // nothing in progress: closed at once
            SslHandler h = looked.newHandler(ByteBufAllocator.DEFAULT);
            try {
                assertEquals(0, old.handshakesInProgress());
                assertEquals(1, next.handshakesInProgress());
                assertTrue(h instanceof OffloadingSslHandler);
                assertSame(next, ((OffloadingSslHandler) h).offload().context());
            } finally {
                ReferenceCountUtil.release(h.engine());
            }
        }
    }

    @Test
    void shouldCloseTheOldEngineAfterTheRetireTimeoutWhenAHandshakeNeverEnds() throws Exception {
        AsyncSslContext old = softwareContext(cert(NAME, Algorithm.ecp256, 300));
        AsyncSslContext next = softwareContext(cert(NAME, Algorithm.ecp256, 301));
        try (AsyncSniMapping mapping = AsyncSniMapping.builder().site("a", old, NAME)
                .retireTimeout(Duration.ofMillis(300)).build()) {
            SslHandler stuck = old.newHandler(ByteBufAllocator.DEFAULT); // never added to a pipeline: never ends
            try {
                CompletableFuture<Void> closed = mapping.replace("a", next);
                assertFalse(closed.isDone());
                closed.get(30, TimeUnit.SECONDS);
                assertTrue(((io.asyncctx.engine.AbstractAsyncEngine) old.engine()).isClosed());
                assertFalse(((io.asyncctx.engine.AbstractAsyncEngine) next.engine()).isClosed());
            } finally {
                ReferenceCountUtil.release(stuck.engine());
            }
        }
    }

    @Test
    void shouldRotateTenTimesUnderLoadWithoutAFailedHandshake() throws Exception {
        int rotations = 10;
        int clientsAtOnce = 4;
        EventLoopGroup clients = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        SslContext client = TlsFixtures.insecureTls13Client();
        ExecutorService load = Executors.newFixedThreadPool(clientsAtOnce);
        AsyncSslContext first = softwareContext(cert(NAME, Algorithm.rsa2048, 1000));
        AsyncSslContext other = softwareContext(cert("other.test", Algorithm.ecp256, 999));
        List<AsyncSslContext> generations = new ArrayList<>(List.of(first));
        try (AsyncSniMapping mapping = AsyncSniMapping.builder().site("a", first, NAME).site("other", other)
                .defaultSite("other").build();
             SniTestServer server = new SniTestServer(TlsTestServer.Transport.EPOLL, 2, mapping)) {
            // Warm up, so that lazily made per-loop resources exist before the baseline.
            assertEquals(BigInteger.valueOf(1000), SniFixtures.handshake(clients, client, server.port(), NAME));
            long engineThreads = SniFixtures.threads("asyncctx-software-");
            long eventFds = SniFixtures.eventFds();

            AtomicBoolean stop = new AtomicBoolean();
            AtomicInteger ok = new AtomicInteger();
            AtomicReference<Throwable> clientFailure = new AtomicReference<>();
            ConcurrentHashMap<BigInteger, Boolean> seen = new ConcurrentHashMap<>();
            List<Future<?>> workers = new ArrayList<>();
            for (int i = 0; i < clientsAtOnce; i++) {
                workers.add(load.submit(() -> {
                    while (!stop.get()) {
                        try {
                            seen.put(SniFixtures.handshake(clients, client, server.port(), NAME), true);
                            ok.incrementAndGet();
                        } catch (Throwable t) {
                            clientFailure.compareAndSet(null, t);
                            return null;
                        }
                    }
                    return null;
                }));
            }
            List<CompletableFuture<Void>> closed = new ArrayList<>();
            for (int g = 1; g <= rotations; g++) {
                int before = ok.get();
                await("load handshakes before rotation " + g, () -> ok.get() >= before + 5
                        || clientFailure.get() != null, 60_000);
                AsyncSslContext next = softwareContext(cert(NAME, g % 2 == 0 ? Algorithm.rsa2048 : Algorithm.ecp256,
                        1000 + g));
                generations.add(next);
                closed.add(mapping.replace("a", next));
                // Right after the rotation, a real peer gets the new certificate.
                assertEquals(SniFixtures.hex(1000 + g), SniFixtures.sClientSerial(server.port(), NAME),
                        "rotation " + g);
            }
            int beforeStop = ok.get();
            await("load handshakes after the last rotation", () -> ok.get() >= beforeStop + 5
                    || clientFailure.get() != null, 60_000);
            stop.set(true);
            for (Future<?> w : workers) {
                w.get(60, TimeUnit.SECONDS);
            }
            assertEquals(null, clientFailure.get(), "a client handshake failed");
            for (CompletableFuture<Void> c : closed) {
                c.get(60, TimeUnit.SECONDS);
            }
            assertEquals(0, server.handshakeFailures.get(), String.valueOf(server.lastHandshakeFailure));
            assertTrue(seen.containsKey(BigInteger.valueOf(1000 + rotations)), "load saw the last certificate: "
                    + seen.keySet());
            for (int g = 0; g < rotations; g++) {
                AsyncSslContext c = generations.get(g);
                assertTrue(((io.asyncctx.engine.AbstractAsyncEngine) c.engine()).isClosed(), "generation " + g);
                assertEquals(0, c.operationsInFlight());
                assertEquals(0, c.handshakesInProgress());
            }
            AsyncSniMapping.SiteMetrics m = mapping.metrics("a");
            assertEquals(rotations, m.rotations());
            assertEquals(0, m.failedOperations());
            assertEquals(0, m.retiring());
            long sum = generations.stream().mapToLong(AsyncSslContext::offloadedOperations).sum();
            assertEquals(sum, m.operations());
            // The old engines' threads and eventfds are gone: back to the counts of one live engine per site.
            await("engine threads back to " + engineThreads,
                    () -> SniFixtures.threads("asyncctx-software-") == engineThreads, 30_000);
            assertEquals(0, SniFixtures.threads("async-sni-retire-"));
            await("eventfds back to " + eventFds, () -> {
                try {
                    return SniFixtures.eventFds() <= eventFds;
                } catch (java.io.IOException e) {
                    return false;
                }
            }, 30_000);
            System.out.println("rotation under load: " + ok.get() + " client handshakes, " + rotations
                    + " rotations, " + m.operations() + " key operations on site a, 0 failed");
        } finally {
            load.shutdownNow();
            ReferenceCountUtil.release(client);
            clients.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        }
    }
}
