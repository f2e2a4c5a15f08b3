package io.asyncctx.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncJobPool;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncStatus;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.testkit.Await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The shared worker pool's hand-off: lock-free submit, last-parked-first-woken idle workers, bound, close; and the
 * path engines use, {@link EngineWorkers#offer(PendingOperation)} with real jobs: each operation is delivered and
 * signalled exactly once, whether a worker performs it, close fails it from the queue, or it races close.
 */
@Timeout(120)
class EngineWorkersTest {

    private EngineWorkers pool;

    private EngineWorkers pool(int workers, int capacity) {
        return pool(workers, capacity, () -> op -> new byte[0]);
    }

    private EngineWorkers pool(int workers, int capacity, Supplier<? extends EngineWorkers.Worker> factory) {
        pool = new EngineWorkers("test", "engine-workers-test-", workers, capacity, factory);
        pool.start();
        return pool;
    }

    @AfterEach
    void closePool() {
        assertTrue(pool.close(5_000), "workers ended");
        assertEquals(0, pool.liveWorkers());
    }

    @Test
    void aTrickleOfTasksIsDoneByTheWorkerThatParkedLast() throws Exception {
        EngineWorkers pool = pool(3, 16);
        awaitAllParked();
        Set<String> threads = ConcurrentHashMap.newKeySet();
        for (int i = 0; i < 50; i++) {
            CountDownLatch done = new CountDownLatch(1);
            assertTrue(pool.execute(() -> {
                threads.add(Thread.currentThread().getName());
                done.countDown();
            }));
            assertTrue(done.await(10, TimeUnit.SECONDS));
            awaitAllParked();
        }
        // one at a time, each after every worker parked: the last to park is the first woken, so one thread
        // does them all (a FIFO of waiters, as in a lock-and-condition queue, rotates through all three)
        assertEquals(1, threads.size(), "threads used: " + threads);
        assertEquals(50, pool.wakeups());
    }

    @Test
    void aSubmitWakesNoWorkerWhileEveryWorkerIsBusy() throws Exception {
        EngineWorkers pool = pool(2, 64);
        awaitAllParked();
        CountDownLatch started = new CountDownLatch(2);
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger ran = new AtomicInteger();
        try {
            for (int i = 0; i < 2; i++) {
                assertTrue(pool.execute(() -> {
                    started.countDown();
                    awaitQuietly(release);
                    ran.incrementAndGet();
                }));
            }
            assertTrue(started.await(10, TimeUnit.SECONDS));
            assertEquals(2, pool.wakeups(), "each of the first two submits woke a parked worker");
            for (int i = 0; i < 10; i++) {
                assertTrue(pool.execute(ran::incrementAndGet));
            }
            assertEquals(2, pool.wakeups(), "no worker was parked: the submits woke nobody");
        } finally {
            release.countDown();
        }
        awaitAllParked();
        assertEquals(12, ran.get());
        assertEquals(2, pool.wakeups(), "the workers drained the queue without parking in between");
    }

    @Test
    void manySubmittersLoseNoTask() throws Exception {
        EngineWorkers pool = pool(2, 100_000);
        int submitters = 4;
        int each = 20_000;
        AtomicInteger ran = new AtomicInteger();
        CountDownLatch all = new CountDownLatch(submitters * each);
        List<Thread> threads = new ArrayList<>();
        for (int s = 0; s < submitters; s++) {
            Thread t = new Thread(() -> {
                for (int i = 0; i < each; i++) {
                    while (!pool.execute(() -> {
                        ran.incrementAndGet();
                        all.countDown();
                    })) {
                        Thread.onSpinWait(); // full: the workers drain it
                    }
                }
            });
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) {
            t.join(60_000);
        }
        assertTrue(all.await(60, TimeUnit.SECONDS), "tasks run: " + ran.get() + " of " + submitters * each);
        assertEquals(submitters * each, ran.get());
        assertEquals(0, pool.queued()); // a task leaves the count when a worker takes it, before it runs
        // After the storm every worker parks again, and a submit then wakes exactly one of them (none lost, no herd).
        awaitAllParked();
        long wakeups = pool.wakeups();
        CountDownLatch after = new CountDownLatch(1);
        assertTrue(pool.execute(after::countDown));
        assertTrue(after.await(10, TimeUnit.SECONDS));
        assertEquals(wakeups + 1, pool.wakeups());
    }

    @Test
    void aFullQueueRefusesWithoutBlockingAndAFreedSlotIsUsable() throws Exception {
        EngineWorkers pool = pool(1, 2);
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch queuedRan = new CountDownLatch(2);
        try {
            assertTrue(pool.execute(() -> {
                started.countDown();
                awaitQuietly(release);
            }));
            assertTrue(started.await(10, TimeUnit.SECONDS));
            assertTrue(pool.execute(queuedRan::countDown));
            assertTrue(pool.execute(queuedRan::countDown));
            assertFalse(pool.execute(() -> { }), "a third queued item over a capacity of 2");
            assertEquals(2, pool.queued());
            release.countDown();
            assertTrue(queuedRan.await(10, TimeUnit.SECONDS));
            assertEquals(0, pool.queued());
            CountDownLatch after = new CountDownLatch(1);
            assertTrue(pool.execute(after::countDown));
            assertTrue(after.await(10, TimeUnit.SECONDS));
        } finally {
            release.countDown();
        }
    }

    @Test
    void closeEndsParkedWorkersAndDropsWhatIsQueued() throws Exception {
        EngineWorkers pool = pool(2, 8);
        CountDownLatch started = new CountDownLatch(2);
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger ranAfter = new AtomicInteger();
        assertTrue(pool.execute(() -> {
            started.countDown();
            awaitQuietly(release);
        }));
        assertTrue(pool.execute(() -> {
            started.countDown();
            awaitQuietly(release);
        }));
        assertTrue(started.await(10, TimeUnit.SECONDS));
        assertTrue(pool.execute(ranAfter::incrementAndGet));
        release.countDown();
        assertTrue(pool.close(5_000), "workers ended");
        assertEquals(0, pool.liveWorkers());
        assertEquals(0, pool.queued());
        assertFalse(pool.execute(ranAfter::incrementAndGet), "closed: refused");
        assertTrue(ranAfter.get() <= 1, "a task queued before close ran at most once: " + ranAfter.get());
    }

    @Test
    void anOfferedOperationIsPerformedDeliveredAndSignalledOnce() throws Exception {
        EngineWorkers pool = pool(2, 16, () -> op -> op.input().clone());
        AsyncJobPool jobs = new AsyncJobPool(8, Runnable::run);
        List<Offered> offered = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            Offered o = new Offered(pool, jobs, new byte[] {(byte) i});
            assertTrue(o.accepted);
            offered.add(o);
        }
        for (Offered o : offered) {
            o.awaitSignal();
            assertEquals(AsyncStartResult.FINISH, o.finish());
            assertEquals(1, o.signals.get(), "signalled once");
        }
        for (int i = 0; i < 8; i++) {
            assertEquals(i, offered.get(i).job.result()[0]);
        }
        assertEquals(8, pool.completed());
        assertEquals(0, pool.failed());
    }

    @Test
    void queuedOperationsFailExactlyOnceAtClose() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch interrupted = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        EngineWorkers pool = pool(1, 8, () -> op -> {
            entered.countDown();
            while (true) { // busy in the operation; close()'s interrupt does not cut it short
                try {
                    if (release.await(30, TimeUnit.SECONDS)) {
                        return new byte[] {1};
                    }
                    throw new IllegalStateException("the test never released the worker");
                } catch (InterruptedException e) {
                    interrupted.countDown();
                }
            }
        });
        AsyncJobPool jobs = new AsyncJobPool(8, Runnable::run);
        Offered inProgress = new Offered(pool, jobs, new byte[0]);
        assertTrue(entered.await(10, TimeUnit.SECONDS));
        List<Offered> queued = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            queued.add(new Offered(pool, jobs, new byte[0]));
        }
        assertEquals(3, pool.queued());

        Thread closer = new Thread(() -> pool.close(30_000), "closer");
        closer.start();
        assertTrue(interrupted.await(10, TimeUnit.SECONDS), "close() stops the workers before draining");
        release.countDown(); // the operation in progress ends; the queued ones must not run
        closer.join(30_000);
        assertFalse(closer.isAlive());

        inProgress.awaitSignal();
        assertEquals(AsyncStartResult.FINISH, inProgress.finish());
        for (Offered o : queued) {
            assertEquals(1, o.signals.get(), "failed and signalled exactly once");
            assertEquals(AsyncStartResult.ERR, o.finish());
            assertTrue(o.job.failure().getMessage().contains("closed"), o.job.failure().getMessage());
        }
        assertEquals(1, pool.completed());
        assertEquals(3, pool.failed());
        assertEquals(0, pool.queued());

        assertTrue(pool.close(1_000), "a second close does nothing more");
        assertEquals(3, pool.failed());
        Offered late = new Offered(pool, jobs, new byte[0]);
        assertTrue(late.accepted, "an offer after close is taken and failed at once");
        assertEquals(1, late.signals.get());
        assertEquals(AsyncStartResult.ERR, late.startResult);
        assertEquals(4, pool.failed());
        for (Offered o : queued) {
            assertEquals(1, o.signals.get(), "nothing failed twice");
        }
    }

    @Test
    void offersRacingCloseAreEachResolvedExactlyOnce() throws Exception {
        int submitters = 3;
        int each = 300;
        for (int round = 0; round < 20; round++) {
            EngineWorkers pool = pool(2, submitters * each);
            AtomicInteger offers = new AtomicInteger();
            int closeAfter = ThreadLocalRandom.current().nextInt(submitters * each);
            CyclicBarrier go = new CyclicBarrier(submitters + 1);
            List<List<Offered>> perThread = new ArrayList<>();
            List<Thread> threads = new ArrayList<>();
            for (int s = 0; s < submitters; s++) {
                List<Offered> mine = new ArrayList<>();
                perThread.add(mine);
                Thread t = new Thread(() -> {
                    AsyncJobPool jobs = new AsyncJobPool(each, Runnable::run); // this thread owns its jobs
                    awaitQuietly(go);
                    for (int i = 0; i < each; i++) {
                        mine.add(new Offered(pool, jobs, new byte[0]));
                        offers.incrementAndGet();
                    }
                }, "submitter-" + s);
                threads.add(t);
                t.start();
            }
            Thread closer = new Thread(() -> {
                awaitQuietly(go);
                while (offers.get() < closeAfter) {
                    Thread.onSpinWait();
                }
                pool.close(10_000);
            }, "closer");
            closer.start();
            for (Thread t : threads) {
                t.join(60_000);
                assertFalse(t.isAlive());
            }
            closer.join(60_000);
            assertFalse(closer.isAlive());

            int total = 0;
            for (List<Offered> mine : perThread) {
                for (Offered o : mine) {
                    assertTrue(o.accepted, "the queue had room for every offer");
                    assertEquals(1, o.signals.get(), () -> "closing after " + closeAfter + " offers: an operation was "
                            + (o.signals.get() == 0 ? "never resolved" : "resolved twice"));
                    total++;
                }
            }
            assertEquals(submitters * each, total);
            assertEquals(total, pool.completed() + pool.failed() + pool.cancelled(), "each counted once");
            assertEquals(0, pool.queued());
        }
    }

    /**
     * One real job, started on the calling thread (its owner), whose operation offers a {@link PendingOperation} on
     * the callback path, as {@link AbstractAsyncEngine}'s session does.
     */
    private static final class Offered {
        final AsyncWaitCtx ctx = new AsyncWaitCtx();
        final AtomicInteger signals = new AtomicInteger();
        final CountDownLatch signalled = new CountDownLatch(1);
        final AsyncJob<byte[]> job;
        final AsyncStartResult startResult;
        boolean accepted;

        Offered(EngineWorkers pool, AsyncJobPool jobs, byte[] input) {
            ctx.setCallback(arg -> {
                signals.incrementAndGet();
                signalled.countDown();
                return 1;
            }, null);
            KeyOperation op = KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256, input);
            job = new AsyncJob<>(jobs, ctx, j -> {
                AsyncWaitCtx.CallbackBinding binding = ctx.getCallbackBinding();
                ctx.setStatus(AsyncStatus.OK);
                accepted = pool.offer(new PendingOperation(j, op, binding.callback(), binding.arg(), null));
                if (!accepted) {
                    ctx.setStatus(AsyncStatus.EAGAIN);
                }
            });
            startResult = job.start();
        }

        void awaitSignal() throws InterruptedException {
            assertTrue(signalled.await(10, TimeUnit.SECONDS), "the operation was signalled");
        }

        /** Resumes the paused job, or reports how it ended at start; closes the ctx. Owner thread. */
        AsyncStartResult finish() {
            AsyncStartResult r = startResult == AsyncStartResult.PAUSE ? job.resume() : startResult;
            ctx.close();
            return r;
        }
    }

    private static void awaitQuietly(CyclicBarrier barrier) {
        try {
            barrier.await(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Awaits, with a 10 s timeout, every worker thread of the pool being parked. A thread's state changes without an
     * event to wait on, so this is an {@link Await} on the threads' states.
     */
    private static void awaitAllParked() throws InterruptedException {
        Await.until("the workers all to park", Duration.ofSeconds(10), () -> Thread.getAllStackTraces().keySet()
                .stream()
                .filter(t -> t.getName().startsWith("engine-workers-test-") && t.isAlive())
                .allMatch(t -> t.getState() == Thread.State.WAITING));
    }
}
