package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.AbstractAsyncEngine;
import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.engine.PendingOperation;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsFixtures.ProcessResult;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.netty.channel.EventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.ReferenceCountUtil;

import java.io.OutputStream;
import java.net.Socket;
import java.security.PublicKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Backpressure through real TLS: with one job slot per loop, handshakes wait for it in arrival order while the loop
 * keeps serving an established keep-alive connection; EAGAIN retries are spaced by the configured backoff, doubling up
 * to the cap.
 */
@ExtendWith(LeakCheck.class)
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RobustQueueingBackoffTest {

    private static final int QUEUED = 4;

    private static X509Bundle cert;

    @BeforeAll
    static void setUp() throws Exception {
        cert = TlsFixtures.certificate(KeyKind.EC_P256);
    }

    private static KeySigner signer() {
        return new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(), null);
    }

    /** Delegates to an engine and records, in order, the ctx of every operation submitted. */
    static final class RecordingEngine implements AsyncEngine {
        final AsyncEngine delegate;
        final List<AsyncWaitCtx> submitted = new CopyOnWriteArrayList<>();

        RecordingEngine(AsyncEngine delegate) {
            this.delegate = delegate;
        }

        @Override
        public String name() {
            return delegate.name();
        }

        @Override
        public PublicKey publicKey() {
            return delegate.publicKey();
        }

        @Override
        public EngineSession newSession(AsyncWaitCtx ctx, Executor owner) {
            EngineSession s = delegate.newSession(ctx, owner);
            return new EngineSession() {
                @Override
                public void submit(AsyncJob<byte[]> job, KeyOperation operation) {
                    submitted.add(job.waitCtx());
                    s.submit(job, operation);
                }

                @Override
                public void cancel(AsyncJob<byte[]> job) {
                    s.cancel(job);
                }

                @Override
                public void close() {
                    s.close();
                }
            };
        }

        @Override
        public void close() {
            delegate.close();
        }
    }

    @Test
    void shouldQueueHandshakesInArrivalOrderWhileTheLoopKeepsServingAnEstablishedConnection() throws Exception {
        byte[] hello = RobustClients.clientHello();
        int fdsBefore = Loops.openFds();
        MultiThreadIoEventLoopGroup clientGroup = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        SslContext clientCtx = RobustClients.clientContext();
        List<Socket> sockets = new ArrayList<>();
        try (FaultInjectingEngine gate = FaultInjectingEngine.builder().name("gated").hangRate(1.0).signer(signer())
                .build()) {
            RecordingEngine engine = new RecordingEngine(gate);
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                    .offloadConfig(OffloadConfig.builder().maxJobsPerLoop(1).operationTimeout(Duration.ZERO).build())
                    .build();
            try (RobustTlsServer server = new RobustTlsServer(Transport.EPOLL, 1, ctx)) {
                // The keep-alive connection: its handshake's operation is released by hand.
                RobustClients.Client keepAlive = RobustClients.connect(clientGroup, clientCtx, server.port());
                Loops.await("the first operation reached the engine", () -> gate.hung() == 1);
                assertEquals(1, gate.completeHung());
                assertTrue(keepAlive.handshake().await(10, TimeUnit.SECONDS) && keepAlive.handshake().isSuccess(),
                        () -> "keep-alive handshake: " + keepAlive.handshake().cause());

                // QUEUED handshakes arrive one by one: the first takes the only slot, the others wait for it.
                for (int i = 0; i < QUEUED; i++) {
                    Socket s = RobustClients.socket(server.port());
                    sockets.add(s);
                    OutputStream out = s.getOutputStream();
                    out.write(hello);
                    out.flush();
                    int waiting = i;
                    Loops.await("handshake " + i + " is in the engine or queued",
                            () -> gate.hung() == 2 && server.sum(AsyncOffloadLoops::jobsWaiting) == waiting);
                }
                assertEquals(1, server.sum(AsyncOffloadLoops::jobsInFlight));

                // The loop serves the established connection while handshakes wait: every round trip is answered
                // while the others are still queued (order, not speed).
                for (int i = 0; i < 20; i++) {
                    keepAlive.get();
                    String res = keepAlive.responses().poll(30, TimeUnit.SECONDS);
                    assertNotNull(res, "round trip " + i + " got no answer while handshakes were queued");
                    assertTrue(res.startsWith("200 TLSv1.3"), res);
                    assertEquals(QUEUED - 1, server.sum(AsyncOffloadLoops::jobsWaiting), "still queued");
                    assertEquals(2, gate.hung(), "no queued handshake reached the engine meanwhile");
                }

                // Release them one at a time; each release lets the next queued one reach the engine.
                for (int i = 1; i < QUEUED; i++) {
                    assertEquals(1, gate.completeHung());
                    int next = i;
                    Loops.await("queued handshake " + next + " reached the engine",
                            () -> engine.submitted.size() == 2 + next);
                }
                assertEquals(1, gate.completeHung());

                // Arrival order (accept order of the server's channels) equals the order they reached the engine.
                List<AsyncWaitCtx> arrival = new ArrayList<>();
                for (AsyncOffloadHandler h : server.handlers) {
                    EventLoop loop = server.group.next();
                    arrival.add(loop.submit(() -> h.connection().waitCtx()).get(10, TimeUnit.SECONDS));
                }
                assertEquals(1 + QUEUED, arrival.size());
                assertEquals(arrival, engine.submitted, "operations reached the engine in arrival order");
                Loops.await("nothing queued or in flight", () -> server.sum(AsyncOffloadLoops::jobsInFlight) == 0
                        && server.sum(AsyncOffloadLoops::jobsWaiting) == 0);
                keepAlive.channel().close().sync();
            } finally {
                for (Socket s : sockets) {
                    s.close();
                }
            }
        } finally {
            ReferenceCountUtil.release(clientCtx);
            Loops.shutdown(clientGroup);
        }
        Loops.awaitFds(fdsBefore);
    }

    /** Answers EAGAIN a given number of times, recording when each offer came, then signs on its own thread. */
    static final class EagainEngine extends AbstractAsyncEngine {
        final KeySigner signer;
        final int refusals;
        final List<Long> offers = new CopyOnWriteArrayList<>();
        final ExecutorService worker = Executors.newSingleThreadExecutor();

        EagainEngine(KeySigner signer, int refusals) {
            super("eagain", FdMode.PER_CTX);
            this.signer = signer;
            this.refusals = refusals;
        }

        @Override
        public PublicKey publicKey() {
            return signer.publicKey();
        }

        @Override
        protected boolean offer(PendingOperation op) {
            offers.add(System.nanoTime());
            if (offers.size() <= refusals) {
                return false;
            }
            worker.execute(() -> {
                try {
                    op.complete(signer.perform(op.operation()));
                } catch (Exception e) {
                    op.fail(e);
                }
            });
            return true;
        }

        @Override
        public void close() {
            super.close();
            worker.shutdownNow();
        }
    }

    @Test
    void shouldSpaceEagainRetriesByTheBackoffDoublingUpToTheCap() throws Exception {
        long initial = TimeUnit.MILLISECONDS.toNanos(2);
        long max = TimeUnit.MILLISECONDS.toNanos(8);
        int refusals = 9; // uncapped, the delays would reach 2 << 8 = 512 ms
        try (EagainEngine engine = new EagainEngine(signer(), refusals)) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                    .offloadConfig(OffloadConfig.builder().eagainInitialBackoff(Duration.ofNanos(initial))
                            .eagainMaxBackoff(Duration.ofNanos(max)).eagainMaxRetries(refusals).build())
                    .build();
            try (RobustTlsServer server = new RobustTlsServer(Transport.EPOLL, 1, ctx)) {
                ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                assertTrue(r.output().contains("TLSv1.3 TLS_"), r.output());
            }
            List<Long> t = engine.offers;
            assertEquals(refusals + 1, t.size(), "the first try and one retry per EAGAIN");
            StringBuilder gaps = new StringBuilder();
            long expected = initial;
            for (int i = 1; i < t.size(); i++) {
                long gap = t.get(i) - t.get(i - 1);
                gaps.append(gap / 1_000).append("us (>= ").append(expected / 1_000).append("us) ");
                assertTrue(gap >= expected, "retry " + i + " came before its backoff: " + gaps);
                assertTrue(gap < max + TimeUnit.MILLISECONDS.toNanos(250),
                        "retry " + i + " waited far beyond the cap: " + gaps);
                expected = Math.min(expected * 2, max);
            }
        }
    }
}
