package io.asyncctx.netty;

import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncStatus;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.EventFd;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.netty.Loops.Transport;
import io.asyncctx.netty.OffloadConfig.Notify;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.channels.ClosedChannelException;
import java.security.PublicKey;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static io.asyncctx.netty.Loops.await;
import static io.asyncctx.netty.Loops.onLoop;
import static io.asyncctx.netty.Loops.op;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Wait-fd registry life cycle on real loops: shared fds, changed fds, close while paused, races, shutdown. */
@Timeout(120)
class WaitFdLifecycleTest {

    @BeforeAll
    static void warmUp() throws Exception {
        // Load classes and open the jars once, so that fd counts below only see our own fds.
        for (Transport t : Transport.values()) {
            if (t == Transport.IO_URING && !io.netty.channel.uring.IoUring.isAvailable()) {
                continue;
            }
            MultiThreadIoEventLoopGroup g = Loops.group(t, 1);
            try (TestEngine e = new TestEngine(FdMode.PER_CTX)) {
                IoEventLoop loop = (IoEventLoop) g.next();
                AsyncOffloadConnection c = onLoop(loop, () -> AsyncOffloadConnection.open(loop, e,
                        OffloadConfig.defaults()));
                onLoop(loop, () -> c.submit(op(0))).get(10, TimeUnit.SECONDS);
                onLoop(loop, c::close);
            } finally {
                Loops.shutdown(g);
            }
        }
    }

    private static boolean onLoopBool(IoEventLoop loop, java.util.concurrent.Callable<Boolean> c) {
        try {
            return onLoop(loop, c);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    @ParameterizedTest
    @EnumSource(value = Transport.class, names = {"EPOLL", "IO_URING"})
    void shouldShareOneEventFdAmongThousandConnectionsAndResumeEachOnce(Transport t) throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(t, 1);
        IoEventLoop loop = (IoEventLoop) group.next();
        TestEngine engine = new TestEngine(FdMode.SHARED_PER_LOOP);
        try {
            int baseline = Loops.openFds();
            engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
            int n = 1000;
            List<AsyncOffloadConnection> conns = new ArrayList<>();
            List<Future<byte[]>> futures = new ArrayList<>();
            AtomicInteger listenerCalls = new AtomicInteger();
            OffloadConfig cfg = OffloadConfig.builder().notify(Notify.FD).build();
            onLoop(loop, () -> {
                for (int i = 0; i < n; i++) {
                    AsyncOffloadConnection c = AsyncOffloadConnection.open(loop, engine, cfg);
                    conns.add(c);
                    Future<byte[]> f = c.submit(op(i));
                    f.addListener(x -> listenerCalls.incrementAndGet());
                    futures.add(f);
                }
            });
            assertEquals(1, engine.sharedFdCount());
            assertEquals(1, AsyncOffloadLoops.registeredWaitFds(loop), "one registration for the shared fd");
            assertEquals(n, onLoop(loop, () -> LoopState.peek(loop).registry.waiters(conns.get(0).waitFds()[0])));
            assertEquals(baseline + 1, Loops.openFds(), "one eventfd for all");
            // Complete from several engine-side threads, in random order.
            List<io.asyncctx.engine.PendingOperation> pending = engine.takePending();
            java.util.Collections.shuffle(pending);
            Thread[] threads = new Thread[4];
            for (int k = 0; k < threads.length; k++) {
                int from = k * n / threads.length;
                int to = (k + 1) * n / threads.length;
                threads[k] = new Thread(() -> pending.subList(from, to)
                        .forEach(p -> p.complete(TestEngine.expected(p.operation().input()))));
                threads[k].start();
            }
            for (Thread th : threads) {
                th.join();
            }
            for (int i = 0; i < n; i++) {
                assertArrayEquals(TestEngine.expected(op(i).input()), futures.get(i).get(10, TimeUnit.SECONDS));
            }
            await("all listeners ran", () -> listenerCalls.get() == n);
            int[] resumes = onLoop(loop, () -> conns.stream().mapToInt(AsyncOffloadConnection::resumes).toArray());
            assertTrue(Arrays.stream(resumes).allMatch(r -> r == 1), "each connection resumed exactly once");
            onLoop(loop, () -> conns.forEach(AsyncOffloadConnection::close));
            await("registration removed", () -> AsyncOffloadLoops.registeredWaitFds(loop) == 0);
            await("shared fd closed", () -> engine.sharedFdCount() == 0);
            assertEquals(n, listenerCalls.get());
            Loops.awaitFds(baseline);
            assertEquals(0, AsyncOffloadLoops.openConnections(loop));
        } finally {
            Loops.shutdown(group);
            engine.close();
        }
    }

    /** An engine that sets a new eventfd at every attempt (clearing the old one) and answers EAGAIN a few times. */
    static final class SwappingEngine implements AsyncEngine {
        final int eagains;
        final List<EventFd> allFds = new CopyOnWriteArrayList<>();
        final List<int[]> registeredAtAttempt = new CopyOnWriteArrayList<>();
        final List<int[]> waitFdsAtAttempt = new CopyOnWriteArrayList<>();
        volatile IoEventLoop loop;
        volatile AsyncOffloadConnection conn;

        SwappingEngine(int eagains) {
            this.eagains = eagains;
        }

        @Override
        public String name() {
            return "swapping";
        }

        @Override
        public PublicKey publicKey() {
            return null;
        }

        @Override
        public EngineSession newSession(AsyncWaitCtx ctx, Executor owner) {
            return new EngineSession() {
                int attempts;

                @Override
                public void submit(AsyncJob<byte[]> job, KeyOperation operation) {
                    attempts++;
                    registeredAtAttempt.add(LoopState.peek(loop).registry.registeredFds());
                    waitFdsAtAttempt.add(conn == null ? new int[0] : conn.waitFds());
                    ctx.clearFd(this); // the old fd stays open until the test ends: never close a registered fd
                    EventFd fd = EventFd.create();
                    allFds.add(fd);
                    ctx.setWaitFd(this, fd.fd(), fd, (c, k, f, d) -> ((EventFd) d).close());
                    if (attempts <= eagains) {
                        ctx.setStatus(AsyncStatus.EAGAIN);
                        return;
                    }
                    new Thread(() -> {
                        if (job.complete(TestEngine.expected(operation.input()))) {
                            fd.signal();
                        }
                    }).start();
                }
            };
        }

        @Override
        public void close() {
            allFds.forEach(EventFd::close);
        }
    }

    @ParameterizedTest
    @EnumSource(value = Transport.class, names = {"EPOLL", "IO_URING"})
    void shouldApplyAddedAndDeletedFdsAcrossPausesOfOneJob(Transport t) throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(t, 1);
        IoEventLoop loop = (IoEventLoop) group.next();
        SwappingEngine engine = new SwappingEngine(4);
        engine.loop = loop;
        try {
            int baseline = Loops.openFds();
            AsyncOffloadConnection conn = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine,
                    OffloadConfig.builder().notify(Notify.FD).build()));
            engine.conn = conn;
            Future<byte[]> f = onLoop(loop, () -> conn.submit(op(5)));
            assertArrayEquals(TestEngine.expected(op(5).input()), f.get(10, TimeUnit.SECONDS));
            assertEquals(5, engine.allFds.size());
            assertArrayEquals(new int[0], engine.waitFdsAtAttempt.get(0));
            for (int a = 1; a < 5; a++) {
                int[] previous = {engine.allFds.get(a - 1).fd()};
                assertArrayEquals(previous, engine.waitFdsAtAttempt.get(a), "attempt " + a + ": waits on fd of the "
                        + "previous attempt only");
                assertArrayEquals(previous, engine.registeredAtAttempt.get(a), "attempt " + a + ": registry holds "
                        + "only the live fd, nothing stale");
            }
            int[] last = {engine.allFds.get(4).fd()};
            assertArrayEquals(last, onLoop(loop, conn::waitFds));
            // io_uring removes the previous attempt's registration asynchronously (its poll's cancellation completes
            // on a later loop turn): wait for it, then only the live fd may remain.
            await("only the live fd registered", () -> {
                try {
                    return java.util.Arrays.equals(last,
                            onLoop(loop, () -> LoopState.peek(loop).registry.registeredFds()));
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });
            assertEquals(1, AsyncOffloadLoops.registeredWaitFds(loop));
            onLoop(loop, conn::close);
            await("registration removed", () -> AsyncOffloadLoops.registeredWaitFds(loop) == 0);
            await("ctx closed", () -> onLoopBool(loop, conn::isCtxClosed));
            assertTrue(engine.allFds.get(4).isClosed(), "the ctx's cleanup closed the live fd");
            engine.close();
            Loops.awaitFds(baseline);
        } finally {
            Loops.shutdown(group);
            engine.close();
        }
    }

    @ParameterizedTest
    @EnumSource(value = Transport.class, names = {"EPOLL", "IO_URING"})
    void shouldLeakNoFdAcrossTenThousandJobsWithRandomCloseWhilePaused(Transport t) throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(t, 2);
        TestEngine engine = new TestEngine(FdMode.PER_CTX);
        try {
            engine.delayMicros = 500;
            engine.randomDelay = true;
            int baseline = Loops.openFds();
            int jobs = 10_000;
            int batch = 200;
            AtomicInteger closedWhilePaused = new AtomicInteger();
            AtomicInteger succeeded = new AtomicInteger();
            OffloadConfig cfg = OffloadConfig.builder().notify(Notify.FD).build();
            // Assertions made on the loops are collected and rethrown here, not left to show up as a timeout.
            LoopAssertions onLoops = new LoopAssertions();
            for (int b = 0; b < jobs / batch; b++) {
                CountDownLatch done = new CountDownLatch(batch);
                for (int i = 0; i < batch; i++) {
                    IoEventLoop loop = (IoEventLoop) group.next();
                    int id = b * batch + i;
                    loop.execute(() -> {
                        AsyncOffloadConnection[] c = new AsyncOffloadConnection[1];
                        boolean[] listening = new boolean[1];
                        onLoops.run(() -> {
                            c[0] = AsyncOffloadConnection.open(loop, engine, cfg);
                            Future<byte[]> f = c[0].submit(op(id));
                            listening[0] = true;
                            f.addListener(x -> onLoops.run(() -> {
                                if (x.isSuccess()) {
                                    succeeded.incrementAndGet();
                                    assertArrayEquals(TestEngine.expected(op(id).input()), (byte[]) x.getNow());
                                } else {
                                    assertInstanceOf(ClosedChannelException.class, x.cause());
                                    closedWhilePaused.incrementAndGet();
                                }
                            }, () -> {
                                c[0].close();
                                done.countDown();
                            }));
                            if (ThreadLocalRandom.current().nextBoolean()) {
                                loop.schedule(c[0]::close, ThreadLocalRandom.current().nextLong(600),
                                        TimeUnit.MICROSECONDS);
                            }
                        }, () -> {
                            if (!listening[0]) {
                                done.countDown(); // open or submit threw: its listener will never count down
                            }
                        });
                    });
                }
                boolean finished = done.await(20, TimeUnit.SECONDS);
                onLoops.rethrow();
                assertTrue(finished, "batch " + b + " did not finish");
            }
            assertEquals(jobs, succeeded.get() + closedWhilePaused.get());
            assertTrue(closedWhilePaused.get() > 0 && succeeded.get() > 0,
                    "both outcomes happened: " + succeeded + " / " + closedWhilePaused);
            for (var e : group) {
                IoEventLoop loop = (IoEventLoop) e;
                await("loop idle", () -> AsyncOffloadLoops.registeredWaitFds(loop) == 0
                        && AsyncOffloadLoops.openConnections(loop) == 0
                        && onLoopBool(loop, () -> LoopState.peek(loop).closingConnections() == 0
                        && AsyncOffloadLoops.jobsInFlight(loop) == 0));
            }
            Loops.awaitFds(baseline);
            System.out.println(t + ": " + jobs + " jobs, " + succeeded + " completed, " + closedWhilePaused
                    + " closed while paused, fds " + baseline + " -> " + Loops.openFds());
        } finally {
            Loops.shutdown(group);
            engine.close();
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldKeepOrderWhenEngineThreadsCompleteWhileConnectionsClose(Transport t) throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(t, 2);
        TestEngine engine = new TestEngine(FdMode.SHARED_PER_LOOP);
        engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
        Notify notify = t == Transport.NIO ? Notify.CALLBACK : (t == Transport.EPOLL ? Notify.FD : Notify.AUTO);
        try {
            int baseline = Loops.openFds();
            int n = 4000;
            ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();
            AtomicInteger[] outcomes = new AtomicInteger[n];
            CountDownLatch done = new CountDownLatch(n);
            OffloadConfig cfg = OffloadConfig.builder().notify(notify).build();
            volatileStop = false;
            Thread[] completers = new Thread[3];
            for (int k = 0; k < completers.length; k++) {
                completers[k] = new Thread(() -> {
                    while (!volatileStop) {
                        for (var p : engine.takePending()) {
                            p.complete(TestEngine.expected(p.operation().input()));
                        }
                        Thread.onSpinWait();
                    }
                });
                completers[k].start();
            }
            for (int i = 0; i < n; i++) {
                IoEventLoop loop = (IoEventLoop) group.next();
                int id = i;
                outcomes[i] = new AtomicInteger();
                loop.execute(() -> {
                    AsyncOffloadConnection c = AsyncOffloadConnection.open(loop, engine, cfg);
                    // Two operations in a row on one connection: a stale wake-up must never finish the second.
                    c.submit(op(id)).addListener(first -> {
                        if (!first.isSuccess()) {
                            record(outcomes[id], errors, id, first, done);
                            return;
                        }
                        if (!Arrays.equals(TestEngine.expected(op(id).input()), (byte[]) first.getNow())) {
                            errors.add(id + ": first result belongs to another operation");
                        }
                        c.submit(op(id + n)).addListener(second -> record(outcomes[id], errors, id + n, second, done));
                    });
                    if (ThreadLocalRandom.current().nextInt(3) == 0) {
                        loop.schedule(c::close, ThreadLocalRandom.current().nextLong(300), TimeUnit.MICROSECONDS);
                    } else {
                        loop.schedule(c::close, 50, TimeUnit.MILLISECONDS);
                    }
                });
            }
            assertTrue(done.await(60, TimeUnit.SECONDS), "not every connection finished: " + done.getCount());
            volatileStop = true;
            for (Thread th : completers) {
                th.join();
            }
            assertTrue(errors.isEmpty(), () -> errors.size() + " errors, e.g. " + errors.peek());
            for (AtomicInteger o : outcomes) {
                assertEquals(1, o.get(), "each connection's last future completed exactly once");
            }
            for (var e : group) {
                IoEventLoop loop = (IoEventLoop) e;
                await("loop idle", () -> AsyncOffloadLoops.openConnections(loop) == 0
                        && AsyncOffloadLoops.registeredWaitFds(loop) == 0
                        && onLoopBool(loop, () -> LoopState.peek(loop).closingConnections() == 0
                        && AsyncOffloadLoops.jobsInFlight(loop) == 0));
            }
            await("shared fds closed", () -> engine.sharedFdCount() == 0);
            Loops.awaitFds(baseline);
        } finally {
            volatileStop = true;
            Loops.shutdown(group);
            engine.close();
        }
    }

    private static volatile boolean volatileStop;

    private static void record(AtomicInteger outcome, ConcurrentLinkedQueue<String> errors, int opId,
                               io.netty.util.concurrent.Future<?> f, CountDownLatch done) {
        if (outcome.incrementAndGet() != 1) {
            errors.add(opId + ": completed twice");
        }
        if (f.isSuccess()) {
            if (!Arrays.equals(TestEngine.expected(op(opId).input()), (byte[]) f.getNow())) {
                errors.add(opId + ": result belongs to another operation");
            }
        } else if (!(f.cause() instanceof ClosedChannelException)) {
            errors.add(opId + ": unexpected failure " + f.cause());
        }
        done.countDown();
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldShutDownLoopWithPausedJobsAndLeakNoFd(Transport t) throws Exception {
        TestEngine engine = new TestEngine(FdMode.PER_CTX);
        engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
        int baseline = Loops.openFds();
        MultiThreadIoEventLoopGroup group = Loops.group(t, 2);
        try {
            int n = 200;
            List<Future<byte[]>> futures = new CopyOnWriteArrayList<>();
            for (int i = 0; i < n; i++) {
                IoEventLoop loop = (IoEventLoop) group.next();
                int id = i;
                onLoop(loop, () -> futures.add(AsyncOffloadConnection.open(loop, engine, OffloadConfig.defaults())
                        .submit(op(id))));
            }
            await("all paused", () -> engine.pendingCount() == n);
            group.shutdownGracefully(0, 5, TimeUnit.SECONDS);
            assertTrue(group.awaitTermination(10, TimeUnit.SECONDS), "group terminated with paused jobs");
            for (Future<byte[]> f : futures) {
                assertTrue(f.isDone());
                assertInstanceOf(ClosedChannelException.class, f.cause());
            }
            assertEquals(n, engine.completeAll(), "late completions after shutdown are harmless");
            Loops.awaitFds(baseline);
        } finally {
            Loops.shutdown(group);
            engine.close();
        }
    }

    /**
     * A connection whose completion is queued for the next wake-up and that closes before the loop sees its fd: its
     * entry leaves the ready queue with the close, not at the next readable fd. Completion, close and check run in one
     * loop task, so the loop cannot take the entry in between.
     */
    @ParameterizedTest
    @EnumSource(value = Transport.class, names = {"EPOLL", "IO_URING"})
    void shouldDropReadyQueueEntryWhenTheConnectionCloses(Transport t) throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(t, 1);
        IoEventLoop loop = (IoEventLoop) group.next();
        try (TestEngine engine = new TestEngine(FdMode.SHARED_PER_LOOP)) {
            engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
            AsyncOffloadConnection a = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine,
                    OffloadConfig.builder().notify(OffloadConfig.Notify.FD).build()));
            AsyncOffloadConnection b = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine,
                    OffloadConfig.builder().notify(OffloadConfig.Notify.FD).build()));
            Future<byte[]> fa = onLoop(loop, () -> a.submit(op(1)));
            Future<byte[]> fb = onLoop(loop, () -> b.submit(op(2)));
            Loops.await("both paused", () -> engine.pendingCount() == 2);
            WaitFdRegistry registry = LoopState.peek(loop).registry;
            int[] queued = onLoop(loop, () -> {
                int completed = engine.completeAll(); // on the loop: queued, fd written, not yet seen
                int before = registry.readyCount();
                a.close();
                return new int[] {completed, before, registry.readyCount()};
            });
            assertEquals(2, queued[0]);
            assertEquals(2, queued[1], "both completions queued for the wake-up");
            assertEquals(1, queued[2], "the closed connection's entry left with it");
            assertTrue(fa.isDone() && !fa.isSuccess());
            assertTrue(fb.get(10, TimeUnit.SECONDS) != null, "the other connection is resumed as before");
            assertEquals(0, (int) onLoop(loop, registry::readyCount));
            assertEquals(0L, (long) onLoop(loop, registry::spuriousWakeups), "the dropped entry's signal was owed");
            onLoop(loop, b::close);
        } finally {
            Loops.shutdown(group);
        }
    }

    /**
     * Two engines, two eventfds: a completion is queued on the ready queue of the fd its engine signals, so a wake-up
     * of one fd takes only its own completions (and none of the other's). Completions and checks run in one loop task,
     * so the loop cannot take an entry in between; then both connections are resumed by their own fd's wake-up.
     */
    @ParameterizedTest
    @EnumSource(value = Transport.class, names = {"EPOLL", "IO_URING"})
    void shouldQueueEachCompletionOnTheReadyQueueOfItsOwnFd(Transport t) throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(t, 1);
        IoEventLoop loop = (IoEventLoop) group.next();
        try (TestEngine one = new TestEngine(FdMode.SHARED_PER_LOOP);
             TestEngine two = new TestEngine(FdMode.SHARED_PER_LOOP)) {
            one.behaviour = TestEngine.Behaviour.ON_DEMAND;
            two.behaviour = TestEngine.Behaviour.ON_DEMAND;
            OffloadConfig cfg = OffloadConfig.builder().notify(OffloadConfig.Notify.FD).build();
            AsyncOffloadConnection a = onLoop(loop, () -> AsyncOffloadConnection.open(loop, one, cfg));
            AsyncOffloadConnection b = onLoop(loop, () -> AsyncOffloadConnection.open(loop, two, cfg));
            Future<byte[]> fa = onLoop(loop, () -> a.submit(op(1)));
            Future<byte[]> fb = onLoop(loop, () -> b.submit(op(2)));
            Loops.await("both paused", () -> one.pendingCount() == 1 && two.pendingCount() == 1);
            WaitFdRegistry registry = LoopState.peek(loop).registry;
            int[] queued = onLoop(loop, () -> {
                int fdA = a.waitFds()[0];
                int fdB = b.waitFds()[0];
                int completed = one.completeAll() + two.completeAll(); // queued and signalled, not yet seen
                return new int[] {fdA == fdB ? 1 : 0, completed, registry.entry(fdA).ready.size(),
                        registry.entry(fdB).ready.size(), registry.readyCount(),
                        registry.entry(fdA).ready.contains(a) && registry.entry(fdB).ready.contains(b) ? 1 : 0};
            });
            assertEquals(0, queued[0], "each engine has its own eventfd");
            assertEquals(2, queued[1]);
            assertEquals(1, queued[2], "a's completion on a's fd");
            assertEquals(1, queued[3], "b's completion on b's fd");
            assertEquals(2, queued[4], "nothing on the shared queue");
            assertEquals(1, queued[5], "each on its own fd's queue");
            assertTrue(fa.get(10, TimeUnit.SECONDS) != null && fb.get(10, TimeUnit.SECONDS) != null);
            assertEquals(0, (int) onLoop(loop, registry::readyCount));
            assertEquals(0L, (long) onLoop(loop, registry::spuriousWakeups));
            onLoop(loop, a::close);
            onLoop(loop, b::close);
        } finally {
            Loops.shutdown(group);
        }
    }
}
