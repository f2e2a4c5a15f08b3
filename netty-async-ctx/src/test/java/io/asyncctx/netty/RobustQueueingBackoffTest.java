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
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SingleThreadIoEventLoop;
import io.netty.channel.nio.NioIoHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;

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
 * keeps serving an established keep-alive connection; EAGAIN retries are scheduled after the configured backoff,
 * doubling up to the cap (read from what the server's loop was asked to schedule, not from the wall clock).
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

    /** An offer to the engine, at {@link System#nanoTime()} {@code atNanos}. */
    record Offer(long atNanos) {
    }

    /** A task scheduled on the server's loop with this delay. */
    record Scheduled(long delayNanos) {
    }

    /**
     * Answers EAGAIN a given number of times, recording each offer in {@code steps} (on the loop, so in order with
     * what the loop schedules), then signs on its own thread.
     */
    static final class EagainEngine extends AbstractAsyncEngine {
        final KeySigner signer;
        final int refusals;
        final List<Object> steps;
        private int offers;
        final ExecutorService worker = Executors.newSingleThreadExecutor();

        EagainEngine(KeySigner signer, int refusals, List<Object> steps) {
            super("eagain", FdMode.PER_CTX);
            this.signer = signer;
            this.refusals = refusals;
            this.steps = steps;
        }

        @Override
        public PublicKey publicKey() {
            return signer.publicKey();
        }

        @Override
        protected boolean offer(PendingOperation op) {
            steps.add(new Offer(System.nanoTime()));
            if (++offers <= refusals) {
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

    /**
     * One epoll loop that records, in {@code steps}, the delay of every task scheduled on it: a connection schedules
     * its EAGAIN retries on its loop ({@link OperationTimers} is given the loop as its scheduler), so these are the
     * delays the backoff asked for, whatever the machine's speed.
     */
    private static MultiThreadIoEventLoopGroup recordingGroup(List<Object> steps) {
        return new MultiThreadIoEventLoopGroup(1, (Executor) null, Transport.EPOLL.factory(), steps) {
            @Override
            protected IoEventLoop newChild(Executor executor, IoHandlerFactory factory, Object... args) {
                @SuppressWarnings("unchecked")
                List<Object> out = (List<Object>) args[0];
                return new SingleThreadIoEventLoop(this, executor, factory) {
                    @Override
                    public ScheduledFuture<?> schedule(Runnable task, long delay, TimeUnit unit) {
                        out.add(new Scheduled(unit.toNanos(delay)));
                        return super.schedule(task, delay, unit);
                    }
                };
            }
        };
    }

    @Test
    void shouldSpaceEagainRetriesByTheBackoffDoublingUpToTheCap() throws Exception {
        int refusals = 9; // uncapped, the delays would reach 2 << 8 = 512 ms
        List<Object> steps = new CopyOnWriteArrayList<>();
        try (EagainEngine engine = new EagainEngine(signer(), refusals, steps)) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                    .offloadConfig(OffloadConfig.builder().eagainInitialBackoff(Duration.ofMillis(2))
                            .eagainMaxBackoff(Duration.ofMillis(8)).eagainMaxRetries(refusals).build())
                    .build();
            try (RobustTlsServer server = new RobustTlsServer(Transport.EPOLL, recordingGroup(steps), ctx,
                    RobustTlsServer.HANDSHAKE_TIMEOUT_MILLIS)) {
                ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                assertTrue(r.output().contains("TLSv1.3 TLS_"), r.output());
            }
        }
        // Split the loop's record at each offer: what each refused offer left scheduled before the next one came.
        List<Long> offers = new ArrayList<>();
        List<List<Long>> scheduledAfter = new ArrayList<>();
        for (Object step : steps) {
            if (step instanceof Offer o) {
                offers.add(o.atNanos());
                scheduledAfter.add(new ArrayList<>());
            } else if (!offers.isEmpty()) {
                scheduledAfter.get(scheduledAfter.size() - 1).add(((Scheduled) step).delayNanos());
            }
        }
        assertEquals(refusals + 1, offers.size(), "the first try and one retry per EAGAIN: " + steps);
        // Each refusal scheduled exactly one task before the next offer: its retry, 2 ms doubling up to the 8 ms cap.
        List<List<Long>> expected = new ArrayList<>();
        for (long ms : new long[] {2, 4, 8, 8, 8, 8, 8, 8, 8}) {
            expected.add(List.of(TimeUnit.MILLISECONDS.toNanos(ms)));
        }
        assertEquals(expected, scheduledAfter.subList(0, refusals), "the retry delays the loop was asked for");
        // And the next offer came from that retry, not before it: one-sided, a slow machine only lengthens the gaps.
        for (int i = 1; i < offers.size(); i++) {
            long gap = offers.get(i) - offers.get(i - 1);
            long delay = expected.get(i - 1).get(0);
            assertTrue(gap >= delay, "retry " + i + " came " + gap / 1_000 + " us after the refusal, before its "
                    + delay / 1_000 + " us backoff");
        }
    }
}
