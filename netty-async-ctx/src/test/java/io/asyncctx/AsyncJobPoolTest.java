package io.asyncctx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link AsyncJobPool}: the bound on jobs in flight and the FIFO wait for a slot. Most tests pump a
 * {@link PumpedExecutor} on the test thread, which is the owner; one runs everything on a real owner thread.
 */
class AsyncJobPoolTest {

    private final PumpedExecutor owner = new PumpedExecutor();
    private final List<AsyncWaitCtx> ctxs = new ArrayList<>();

    private AsyncJob<String> newJob(AsyncJobPool pool) {
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        ctxs.add(ctx);
        return new AsyncJob<>(pool, ctx, job -> { });
    }

    private static void finish(AsyncJob<String> job) {
        assertTrue(job.complete("done"));
        assertEquals(AsyncStartResult.FINISH, job.resume());
    }

    @Test
    void shouldAnswerNoJobsWhenMaxJobsAreInFlight() {
        AsyncJobPool pool = new AsyncJobPool(2, owner);
        assertEquals(2, pool.maxJobs());
        AsyncJob<String> a = newJob(pool);
        AsyncJob<String> b = newJob(pool);
        AsyncJob<String> c = newJob(pool);
        assertEquals(AsyncStartResult.PAUSE, a.start());
        assertEquals(AsyncStartResult.PAUSE, b.start());
        assertEquals(2, pool.inFlight());
        assertEquals(AsyncStartResult.NO_JOBS, c.start());
        assertEquals(2, pool.inFlight());

        finish(a);
        assertEquals(1, pool.inFlight());
        assertEquals(AsyncStartResult.PAUSE, c.start(), "no one waits: a freed slot is taken at once");
        assertEquals(2, pool.inFlight());
        assertTrue(b.abandon());
        assertTrue(c.abandon());
        assertEquals(0, pool.inFlight());
    }

    @Test
    void shouldRunWaiterThroughOwnerExecutorWhenSlotFrees() {
        AsyncJobPool pool = new AsyncJobPool(1, owner);
        AsyncJob<String> holder = newJob(pool);
        AsyncJob<String> waiting = newJob(pool);
        assertEquals(AsyncStartResult.PAUSE, holder.start());
        assertEquals(AsyncStartResult.NO_JOBS, waiting.start());
        List<AsyncStartResult> startedByWaiter = new ArrayList<>();
        pool.awaitSlot(() -> startedByWaiter.add(waiting.start()));
        assertEquals(1, pool.waiting());
        assertEquals(0, owner.pending(), "nothing to do while the pool is full");

        finish(holder);
        assertTrue(startedByWaiter.isEmpty(), "the waiter is not run inline in the call that freed the slot");
        assertEquals(1, owner.pending());

        owner.runAll();
        assertEquals(List.of(AsyncStartResult.PAUSE), startedByWaiter);
        assertEquals(0, pool.waiting());
        assertEquals(1, pool.inFlight());
        assertSame(waiting, waiting.waitCtx().currentJob());
    }

    @Test
    void shouldRunWaiterSoonWhenSlotIsAlreadyFree() {
        AsyncJobPool pool = new AsyncJobPool(1, owner);
        int[] runs = new int[1];
        pool.awaitSlot(() -> runs[0]++);
        assertEquals(0, runs[0], "not inline");
        assertEquals(1, owner.runAll());
        assertEquals(1, runs[0]);
        assertEquals(0, pool.waiting());
    }

    @Test
    void shouldServeWaitersFirstInFirstOut() {
        AsyncJobPool pool = new AsyncJobPool(1, owner);
        AsyncJob<String> holder = newJob(pool);
        assertEquals(AsyncStartResult.PAUSE, holder.start());
        List<String> order = new ArrayList<>();
        List<AsyncJob<String>> jobs = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            AsyncJob<String> job = newJob(pool);
            jobs.add(job);
            assertEquals(AsyncStartResult.NO_JOBS, job.start());
            String name = "w" + i;
            pool.awaitSlot(() -> {
                order.add(name);
                assertEquals(AsyncStartResult.PAUSE, job.start());
            });
        }
        finish(holder);
        for (int i = 0; i < 5; i++) {
            owner.runAll();
            assertEquals(i + 1, order.size(), "one waiter per freed slot: " + order);
            assertEquals(1, pool.inFlight());
            finish(jobs.get(i));
        }
        assertEquals(List.of("w0", "w1", "w2", "w3", "w4"), order);
        owner.runAll();
        assertEquals(0, pool.inFlight());
    }

    @Test
    void shouldRunSeveralWaitersInOrderInOneDrainWhenSeveralSlotsFree() {
        AsyncJobPool pool = new AsyncJobPool(3, owner);
        List<AsyncJob<String>> holders = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            AsyncJob<String> h = newJob(pool);
            assertEquals(AsyncStartResult.PAUSE, h.start());
            holders.add(h);
        }
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            int n = i;
            AsyncJob<String> job = newJob(pool);
            pool.awaitSlot(() -> {
                order.add(n);
                assertEquals(AsyncStartResult.PAUSE, job.start());
            });
        }
        holders.forEach(h -> assertTrue(h.abandon()));
        assertEquals(1, owner.pending(), "one drain is scheduled however many slots free");
        owner.runAll();
        assertEquals(List.of(0, 1, 2), order);
        assertEquals(3, pool.inFlight());
        assertEquals(1, pool.waiting());
    }

    @Test
    void shouldNotLetNewStartJumpTheQueueWhileSomeoneWaits() {
        AsyncJobPool pool = new AsyncJobPool(1, owner);
        AsyncJob<String> holder = newJob(pool);
        AsyncJob<String> waiting = newJob(pool);
        AsyncJob<String> latecomer = newJob(pool);
        assertEquals(AsyncStartResult.PAUSE, holder.start());
        assertEquals(AsyncStartResult.NO_JOBS, waiting.start());
        List<String> order = new ArrayList<>();
        pool.awaitSlot(() -> {
            order.add("waiting");
            assertEquals(AsyncStartResult.PAUSE, waiting.start());
        });

        finish(holder);
        assertEquals(0, pool.inFlight(), "a slot is free...");
        assertEquals(AsyncStartResult.NO_JOBS, latecomer.start(), "...but the latecomer must queue behind the waiter");
        pool.awaitSlot(() -> {
            order.add("latecomer");
            assertEquals(AsyncStartResult.PAUSE, latecomer.start());
        });

        owner.runAll();
        assertEquals(List.of("waiting"), order);
        finish(waiting);
        owner.runAll();
        assertEquals(List.of("waiting", "latecomer"), order);
        assertEquals(1, pool.inFlight());
    }

    @Test
    void shouldNotRunCancelledWaiter() {
        AsyncJobPool pool = new AsyncJobPool(1, owner);
        AsyncJob<String> holder = newJob(pool);
        assertEquals(AsyncStartResult.PAUSE, holder.start());
        List<String> ran = new ArrayList<>();
        Runnable gone = () -> ran.add("gone");
        Runnable stays = () -> ran.add("stays");
        pool.awaitSlot(gone);
        pool.awaitSlot(stays);
        assertEquals(2, pool.waiting());

        assertTrue(pool.cancelWait(gone));
        assertFalse(pool.cancelWait(gone), "not waiting any more");
        assertFalse(pool.cancelWait(() -> { }), "never waited");
        assertEquals(1, pool.waiting());

        finish(holder);
        owner.runAll();
        assertEquals(List.of("stays"), ran);
    }

    @Test
    void shouldLetNewStartProceedWhenLastWaiterCancels() {
        AsyncJobPool pool = new AsyncJobPool(1, owner);
        AsyncJob<String> holder = newJob(pool);
        assertEquals(AsyncStartResult.PAUSE, holder.start());
        Runnable waiter = () -> { };
        pool.awaitSlot(waiter);
        finish(holder);
        assertTrue(pool.cancelWait(waiter));
        AsyncJob<String> next = newJob(pool);
        assertEquals(AsyncStartResult.PAUSE, next.start(), "no one waits any more");
        owner.runAll(); // the stale drain finds nobody
        assertEquals(1, pool.inFlight());
    }

    @Test
    void shouldRunNextWaiterWhenOneDoesNotTakeItsSlot() {
        AsyncJobPool pool = new AsyncJobPool(1, owner);
        List<String> ran = new ArrayList<>();
        AsyncJob<String> job = newJob(pool);
        pool.awaitSlot(() -> ran.add("no longer needs it"));
        pool.awaitSlot(() -> {
            ran.add("starts");
            assertEquals(AsyncStartResult.PAUSE, job.start());
        });
        pool.awaitSlot(() -> ran.add("pool full again"));
        owner.runAll();
        assertEquals(List.of("no longer needs it", "starts"), ran);
        assertEquals(1, pool.waiting(), "the third still waits for the next slot");
    }

    @Test
    void shouldKeepServingWaitersWhenOneThrows() {
        AsyncJobPool pool = new AsyncJobPool(1, owner);
        AsyncJob<String> holder = newJob(pool);
        AsyncJob<String> good = newJob(pool);
        assertEquals(AsyncStartResult.PAUSE, holder.start());
        List<Throwable> reported = new ArrayList<>();
        List<String> ran = new ArrayList<>();
        pool.awaitSlot(() -> {
            ran.add("broken");
            throw new IllegalStateException("broken waiter");
        });
        pool.awaitSlot(() -> {
            ran.add("good");
            assertEquals(AsyncStartResult.PAUSE, good.start());
        });
        finish(holder);

        Thread me = Thread.currentThread();
        Thread.UncaughtExceptionHandler previous = me.getUncaughtExceptionHandler();
        me.setUncaughtExceptionHandler((t, e) -> reported.add(e));
        try {
            owner.runAll();
        } finally {
            me.setUncaughtExceptionHandler(previous == me.getThreadGroup() ? null : previous);
        }
        assertEquals(List.of("broken", "good"), ran);
        assertEquals(1, reported.size());
        assertEquals("broken waiter", reported.get(0).getMessage());
        assertEquals(1, pool.inFlight());
        assertEquals(0, pool.waiting());
    }

    @Test
    void shouldReleaseSlotEvenWhenOwnerExecutorRejectsTheDrain() {
        AsyncJobPool pool = new AsyncJobPool(1, task -> {
            throw new RejectedExecutionException("event loop shut down");
        });
        AsyncJob<String> holder = newJob(pool);
        assertEquals(AsyncStartResult.PAUSE, holder.start());
        pool.awaitSlot(() -> { });
        assertTrue(holder.abandon(), "abandon does not fail because the owner is shutting down");
        assertEquals(0, pool.inFlight());
        assertEquals(1, pool.waiting(), "the waiter cannot run on a dead owner");
    }

    @Test
    void shouldRejectBadArguments() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new AsyncJobPool(0, owner));
        assertTrue(e.getMessage().contains("maxJobs"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new AsyncJobPool(-5, owner));
        assertEquals("owner", assertThrows(NullPointerException.class, () -> new AsyncJobPool(1, null)).getMessage());
        AsyncJobPool pool = new AsyncJobPool(1, owner);
        assertEquals("waiter", assertThrows(NullPointerException.class, () -> pool.awaitSlot(null)).getMessage());
        assertEquals(0, pool.waiting());
    }

    /**
     * Everything on a real owner thread: 40 jobs through a pool of 4, each completed by one of 3 engine threads that
     * hand the resume back to the owner (the callback path); jobs that get NO_JOBS wait with awaitSlot.
     */
    @Test
    @Timeout(20)
    void shouldBoundJobsInFlightOnRealOwnerThread() throws Exception {
        int total = 40;
        int maxJobs = 4;
        ExecutorService ownerThread = Executors.newSingleThreadExecutor(r -> new Thread(r, "test-owner"));
        ExecutorService engines = Executors.newFixedThreadPool(3, r -> new Thread(r, "test-engine"));
        try {
            AsyncJobPool pool = new AsyncJobPool(maxJobs, ownerThread);
            AtomicInteger maxSeen = new AtomicInteger();
            AtomicInteger finished = new AtomicInteger();
            AtomicInteger noJobs = new AtomicInteger();
            CompletableFuture<Void> allDone = new CompletableFuture<>();
            List<AsyncWaitCtx> owned = new ArrayList<>();

            CountDownLatch allStarted = new CountDownLatch(1);
            class Conn {
                final AsyncWaitCtx ctx = new AsyncWaitCtx();
                final AsyncJob<Integer> job;
                final int id;

                Conn(int id) {
                    this.id = id;
                    ctx.setCallback(arg -> {
                        ownerThread.execute(this::onResume);
                        return 1;
                    }, this);
                    AsyncWaitCtx.CallbackBinding binding = ctx.getCallbackBinding();
                    job = new AsyncJob<>(pool, ctx, j -> {
                        j.waitCtx().setStatus(AsyncStatus.OK);
                        engines.execute(() -> {
                            try {
                                // Hold the engines until all connections have tried to start: the bound is hit.
                                if (!allStarted.await(10, TimeUnit.SECONDS)) {
                                    return;
                                }
                            } catch (InterruptedException e) {
                                return;
                            }
                            if (j.complete(id * 2)) {
                                binding.call();
                            }
                        });
                    });
                }

                void start() {
                    AsyncStartResult r = job.start();
                    maxSeen.accumulateAndGet(pool.inFlight(), Math::max);
                    if (r == AsyncStartResult.NO_JOBS) {
                        noJobs.incrementAndGet();
                        pool.awaitSlot(this::start);
                    } else if (r != AsyncStartResult.PAUSE) {
                        // The engine completed before the job paused: start finished it already.
                        ended(r);
                    }
                }

                void onResume() {
                    if (job.isDone()) {
                        return; // the callback of a completion that start() already took
                    }
                    ended(job.resume());
                }

                void ended(AsyncStartResult r) {
                    if (r != AsyncStartResult.FINISH || job.result() != id * 2) {
                        allDone.completeExceptionally(new AssertionError("job " + id + " ended with " + r));
                        return;
                    }
                    ctx.close();
                    if (finished.incrementAndGet() == total) {
                        allDone.complete(null);
                    }
                }
            }
            ownerThread.execute(() -> {
                for (int i = 0; i < total; i++) {
                    Conn c = new Conn(i);
                    owned.add(c.ctx);
                    c.start();
                }
                allStarted.countDown();
            });
            allDone.get(15, TimeUnit.SECONDS);
            int[] inFlight = new int[1];
            ownerThread.submit(() -> inFlight[0] = pool.inFlight()).get(5, TimeUnit.SECONDS);
            assertEquals(0, inFlight[0]);
            assertEquals(total, finished.get());
            assertTrue(maxSeen.get() <= maxJobs, "at most " + maxJobs + " in flight, saw " + maxSeen.get());
            assertEquals(total, owned.size());
            assertEquals(total - maxJobs, noJobs.get(), "every job beyond the bound waited once, none twice");
            assertTrue(owned.stream().allMatch(AsyncWaitCtx::isClosed));
        } finally {
            ownerThread.shutdownNow();
            engines.shutdownNow();
            assertTrue(ownerThread.awaitTermination(5, TimeUnit.SECONDS));
            assertTrue(engines.awaitTermination(5, TimeUnit.SECONDS));
        }
    }

    /**
     * The gauges are read by a metrics scrape thread while the owner changes them. Each round the owner fills the pool
     * and queues waiters, then waits until the reader has seen exactly those values through the getters alone (no
     * other synchronisation), then drains. The reader checks that every value it ever reads is one the pool can have.
     */
    @Test
    @Timeout(60)
    void shouldPublishInFlightAndWaitingToAnotherThread() throws Exception {
        int max = 4;
        int queued = 8;
        int rounds = 200;
        ExecutorService ownerThread = Executors.newSingleThreadExecutor();
        try {
            AsyncJobPool pool = new AsyncJobPool(max, ownerThread);
            CountDownLatch[] seenFull = new CountDownLatch[rounds];
            for (int r = 0; r < rounds; r++) {
                seenFull[r] = new CountDownLatch(1);
            }
            AtomicInteger round = new AtomicInteger();
            List<String> badReads = new java.util.concurrent.CopyOnWriteArrayList<>();
            Thread reader = new Thread(() -> {
                for (int r = 0; r < rounds; r++) {
                    while (true) {
                        int inFlight = pool.inFlight();
                        int waiting = pool.waiting();
                        if (inFlight < 0 || inFlight > max || waiting < 0 || waiting > queued) {
                            badReads.add("inFlight=" + inFlight + " waiting=" + waiting);
                        }
                        if (inFlight == max && waiting == queued) {
                            break;
                        }
                        Thread.onSpinWait();
                    }
                    seenFull[r].countDown();
                    while (round.get() == r) {
                        Thread.onSpinWait(); // until the owner has drained this round
                    }
                }
            }, "scrape");
            reader.setDaemon(true);
            reader.start();
            for (int r = 0; r < rounds; r++) {
                int k = r;
                List<AsyncJob<String>> jobs = CompletableFuture.supplyAsync(() -> {
                    List<AsyncJob<String>> started = new ArrayList<>();
                    for (int i = 0; i < max; i++) {
                        AsyncJob<String> j = new AsyncJob<>(pool, new AsyncWaitCtx(), job -> { });
                        assertEquals(AsyncStartResult.PAUSE, j.start());
                        started.add(j);
                    }
                    for (int i = 0; i < queued; i++) {
                        pool.awaitSlot(() -> { }); // waiters that no longer need their slot
                    }
                    return started;
                }, ownerThread).get(10, TimeUnit.SECONDS);
                assertTrue(seenFull[k].await(30, TimeUnit.SECONDS), "round " + k + ": the scrape thread never saw "
                        + max + " in flight and " + queued + " waiting");
                CompletableFuture.runAsync(() -> jobs.forEach(AsyncJob::abandon), ownerThread).get(10, TimeUnit.SECONDS);
                // The drain runs on the owner after the abandons; wait for it there.
                CompletableFuture.runAsync(() -> { }, ownerThread).get(10, TimeUnit.SECONDS);
                assertEquals(0, (int) CompletableFuture.supplyAsync(pool::waiting, ownerThread).get());
                round.incrementAndGet();
            }
            reader.join(10_000);
            assertFalse(reader.isAlive());
            assertEquals(List.of(), badReads);
            assertEquals(0, pool.inFlight());
            assertEquals(0, pool.waiting());
        } finally {
            ownerThread.shutdownNow();
        }
    }
}
