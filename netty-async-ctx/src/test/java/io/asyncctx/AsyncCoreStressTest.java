package io.asyncctx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Races of the core, bounded in time (about 2 s each): the cross-thread callback/status of {@link AsyncWaitCtx}, and
 * {@link AsyncJob} completions from several engine threads racing the owner's start, resume and abandon.
 */
class AsyncCoreStressTest {

    private static final long RUN_NANOS = TimeUnit.SECONDS.toNanos(2);

    /** A callback that knows which argument it was set with, so that a reader can check the pair. */
    private record TaggedCallback(int writer, Object expectedArg) implements AsyncCallback {
        @Override
        public int call(Object arg) {
            return arg == expectedArg ? 1 : 0;
        }
    }

    /**
     * Rounds of racing writers, each setting its own (callback, arg) pair and statuses; the test thread reads
     * throughout. During a round every {@link AsyncWaitCtx#getCallbackBinding()} must be a pair that one writer set;
     * after the round, when the writers are quiet, {@link AsyncWaitCtx#getCallback()} and
     * {@link AsyncWaitCtx#getCallbackArg()} must belong together (with an arg-then-callback write of two fields, two
     * racing writers can leave writer A's callback with writer B's argument for good).
     */
    @Test
    @Timeout(30)
    void shouldNeverExposeCallbackWithAnotherWritersArgument() throws Exception {
        int writers = 4;
        int burst = 256;
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        CyclicBarrier roundStart = new CyclicBarrier(writers + 1);
        AtomicInteger doneInRound = new AtomicInteger();
        AtomicReference<Boolean> stop = new AtomicReference<>(false);
        ExecutorService pool = Executors.newFixedThreadPool(writers, r -> new Thread(r, "test-writer"));
        List<Future<?>> futures = new ArrayList<>();
        AsyncStatus[] statuses = AsyncStatus.values();
        for (int w = 0; w < writers; w++) {
            int id = w;
            futures.add(pool.submit(() -> {
                List<TaggedCallback> mine = new ArrayList<>();
                for (int k = 0; k < 4; k++) {
                    Object arg = "arg-" + id + "-" + k;
                    mine.add(new TaggedCallback(id, arg));
                }
                while (true) {
                    roundStart.await(10, TimeUnit.SECONDS);
                    if (stop.get()) {
                        return null;
                    }
                    for (int i = 0; i < burst; i++) {
                        TaggedCallback cb = mine.get(i & 3);
                        if (i % 97 == 0) {
                            ctx.setCallback(null, cb.expectedArg());
                        } else {
                            ctx.setCallback(cb, cb.expectedArg());
                        }
                        ctx.setStatus(statuses[(i + id) & 3]);
                    }
                    doneInRound.incrementAndGet();
                }
            }));
        }
        long reads = 0;
        long pairsSeen = 0;
        int rounds = 0;
        long deadline = System.nanoTime() + RUN_NANOS;
        try {
            while (System.nanoTime() < deadline) {
                doneInRound.set(0);
                roundStart.await(10, TimeUnit.SECONDS);
                rounds++;
                while (doneInRound.get() < writers) {
                    AsyncWaitCtx.CallbackBinding b = ctx.getCallbackBinding();
                    if (b != null) {
                        TaggedCallback cb = assertInstanceOf(TaggedCallback.class, b.callback());
                        assertSame(cb.expectedArg(), b.arg(), "callback of writer " + cb.writer() + " with arg "
                                + b.arg());
                        assertEquals(1, b.call());
                        pairsSeen++;
                    }
                    assertNotNull(ctx.getStatus(), "status is never null");
                    reads++;
                }
                AsyncCallback last = ctx.getCallback();
                Object lastArg = ctx.getCallbackArg();
                if (last == null) {
                    assertNull(lastArg, "no callback, no argument (round " + rounds + ")");
                } else {
                    assertSame(((TaggedCallback) last).expectedArg(), lastArg,
                            "quiet ctx holds a mixed pair after round " + rounds);
                }
            }
            stop.set(true);
            roundStart.await(10, TimeUnit.SECONDS);
            for (Future<?> f : futures) {
                f.get(10, TimeUnit.SECONDS);
            }
        } catch (BrokenBarrierException | TimeoutException e) {
            for (Future<?> f : futures) {
                if (f.isDone()) {
                    f.get(); // surface a writer's failure
                }
            }
            throw e;
        } finally {
            stop.set(true);
            pool.shutdownNow();
            assertTrue(pool.awaitTermination(5, TimeUnit.SECONDS));
        }
        assertTrue(rounds > 1, "rounds: " + rounds);
        assertTrue(pairsSeen > 0, "the reader saw pairs: " + pairsSeen + " of " + reads + " reads");
        ctx.close();
        assertNull(ctx.getCallbackBinding());
        assertEquals(AsyncStatus.UNSUPPORTED, ctx.getStatus());
    }

    /** Closing while other threads set the callback and status: once closed, the ctx keeps neither. */
    @Test
    @Timeout(30)
    void shouldKeepNoCallbackOrStatusSetConcurrentlyWithClose() throws Exception {
        int threads = 3;
        ExecutorService pool = Executors.newFixedThreadPool(threads, r -> new Thread(r, "test-setter"));
        int rounds = 0;
        int rejected = 0;
        long deadline = System.nanoTime() + RUN_NANOS / 2;
        try {
            while (System.nanoTime() < deadline) {
                AsyncWaitCtx ctx = new AsyncWaitCtx();
                CyclicBarrier go = new CyclicBarrier(threads + 1);
                List<Future<Integer>> futures = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    futures.add(pool.submit(() -> {
                        go.await(10, TimeUnit.SECONDS);
                        int refused = 0;
                        for (int i = 0; i < 50; i++) {
                            try {
                                ctx.setCallback(a -> 1, "x");
                                ctx.setStatus(AsyncStatus.OK);
                            } catch (IllegalStateException closed) {
                                refused++;
                            }
                        }
                        return refused;
                    }));
                }
                go.await(10, TimeUnit.SECONDS);
                ctx.close();
                for (Future<Integer> f : futures) {
                    rejected += f.get(10, TimeUnit.SECONDS);
                }
                assertNull(ctx.getCallbackBinding(), "a callback survived close (round " + rounds + ")");
                assertEquals(AsyncStatus.UNSUPPORTED, ctx.getStatus(), "a status survived close (round " + rounds
                        + ")");
                rounds++;
            }
        } finally {
            pool.shutdownNow();
            assertTrue(pool.awaitTermination(5, TimeUnit.SECONDS));
        }
        assertTrue(rounds > 0);
        assertTrue(rejected > 0, "some sets must have met the closed ctx in " + rounds + " rounds");
    }

    // ---- AsyncJob race ------------------------------------------------------------------------------------------

    /** What the test knows about one job. Owner-thread fields except {@link #wins}. */
    private static final class Track {
        final AsyncJob<Integer> job;
        final int id;
        final int mode;
        final AtomicInteger wins = new AtomicInteger();
        AsyncWaitCtx.CallbackBinding binding;
        int ends;
        boolean abandoned;
        AsyncStartResult endedWith;

        Track(int id, int mode, AsyncJob<Integer> job) {
            this.id = id;
            this.mode = mode;
            this.job = job;
        }
    }

    private static final int MODE_SYNC = 0;
    private static final int MODE_STATUS_ERR = 1;
    private static final int MODE_EAGAIN_ONCE = 2;
    private static final int MODE_FAIL = 3;
    private static final int MODE_COMPLETE = 4;

    /**
     * The owner thread is the test thread, draining a queue that the pool and the callbacks post to. Several
     * connections each run three jobs one after another on one ctx; every job's completion is raced by two of the
     * completer threads (duplicate completions); the owner randomly abandons jobs, resumes spuriously, and starts
     * through a small pool so that NO_JOBS and awaitSlot happen. Each job must end exactly once, deliver its result iff
     * it was not abandoned, and the pool must end with nothing in flight.
     */
    @Test
    @Timeout(60)
    void shouldEndEveryJobExactlyOnceWhenCompletionsRaceStartResumeAndAbandon() throws Exception {
        long seed = System.nanoTime();
        Random random = new Random(seed);
        int completerThreads = 4;
        int connections = 24;
        int jobsPerConnection = 3;
        LinkedBlockingQueue<Runnable> ownerQueue = new LinkedBlockingQueue<>();
        LinkedBlockingQueue<Track> engineQueue = new LinkedBlockingQueue<>();
        AsyncJobPool pool = new AsyncJobPool(6, ownerQueue::add);
        List<Track> tracks = new ArrayList<>();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        ExecutorService completers = Executors.newFixedThreadPool(completerThreads, r -> new Thread(r, "test-engine"));
        for (int t = 0; t < completerThreads; t++) {
            completers.execute(() -> {
                try {
                    while (!Thread.currentThread().isInterrupted()) {
                        Track tr = engineQueue.take();
                        boolean won = tr.mode == MODE_FAIL
                                ? tr.job.fail(new IllegalStateException("engine failure " + tr.id))
                                : tr.job.complete(tr.id * 31);
                        if (won) {
                            tr.wins.incrementAndGet();
                            tr.binding.call();
                        }
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
        }

        /** One connection: one ctx, jobs one after another, closed at the end. Owner thread only. */
        final class Conn {
            final AsyncWaitCtx ctx = new AsyncWaitCtx();
            Track current;
            int started;
            boolean closed;

            Conn() {
                ctx.setCallback(arg -> {
                    ownerQueue.add(((Conn) arg)::onSignal);
                    return 1;
                }, this);
            }

            void next(boolean mayStart) {
                if (started == jobsPerConnection || !mayStart) {
                    ctx.close();
                    closed = true;
                    return;
                }
                int id = tracks.size();
                int mode = random.nextInt(10);
                mode = mode == 0 ? MODE_SYNC : mode == 1 ? MODE_STATUS_ERR : mode == 2 ? MODE_EAGAIN_ONCE
                        : mode == 3 ? MODE_FAIL : MODE_COMPLETE;
                int m = mode;
                Track[] self = new Track[1];
                AsyncJob<Integer> job = new AsyncJob<>(pool, ctx, j -> {
                    Track tr = self[0];
                    tr.binding = j.waitCtx().getCallbackBinding();
                    switch (m) {
                        case MODE_SYNC -> j.complete(tr.id * 31);
                        case MODE_STATUS_ERR -> j.waitCtx().setStatus(AsyncStatus.ERR);
                        case MODE_EAGAIN_ONCE -> {
                            if (j.runs() == 1) {
                                j.waitCtx().setStatus(AsyncStatus.EAGAIN);
                            } else {
                                handOff(j, tr);
                            }
                        }
                        default -> handOff(j, tr);
                    }
                });
                Track tr = new Track(id, m, job);
                self[0] = tr;
                tracks.add(tr);
                current = tr;
                started++;
                start();
            }

            void handOff(AsyncJob<Integer> j, Track tr) {
                j.waitCtx().setStatus(AsyncStatus.OK);
                engineQueue.add(tr); // two completers race for the same job
                engineQueue.add(tr);
            }

            void start() {
                Track tr = current;
                if (tr.job.isDone()) {
                    return; // abandoned while waiting for a slot
                }
                AsyncStartResult r = tr.job.start();
                if (r == AsyncStartResult.NO_JOBS) {
                    if (random.nextInt(8) == 0) {
                        ended(tr, null, tr.job.abandon()); // gave up while waiting
                        return;
                    }
                    pool.awaitSlot(this::start);
                    return;
                }
                afterRun(tr, r);
            }

            void afterRun(Track tr, AsyncStartResult r) {
                if (r != AsyncStartResult.PAUSE) {
                    ended(tr, r, false);
                    return;
                }
                int dice = random.nextInt(10);
                if (dice == 0) {
                    ended(tr, null, tr.job.abandon());
                } else if (dice == 1) {
                    AsyncStartResult again = tr.job.resume(); // spurious, unless the completion already arrived
                    afterRun(tr, again);
                } else if (ctx.getStatus() == AsyncStatus.EAGAIN) {
                    ownerQueue.add(() -> {
                        if (!tr.job.isDone()) { // not abandoned meanwhile (a stale signal may have done so)
                            afterRun(tr, tr.job.resume());
                        }
                    });
                }
            }

            void onSignal() {
                Track tr = current;
                if (tr == null || closed) {
                    return;
                }
                AsyncJob.State s = tr.job.state();
                if (s != AsyncJob.State.PAUSED && s != AsyncJob.State.RESUMING) {
                    return; // a stale signal for an earlier job of this ctx, or for one that ended already
                }
                if (random.nextInt(10) == 0) {
                    ended(tr, null, tr.job.abandon());
                } else {
                    afterRun(tr, tr.job.resume());
                }
            }

            void ended(Track tr, AsyncStartResult r, boolean abandoned) {
                tr.ends++;
                tr.abandoned = abandoned;
                tr.endedWith = r;
                if (r == null && !abandoned) {
                    fail("abandon of live job " + tr.id + " returned false");
                }
                next(System.nanoTime() < deadline[0]);
            }
        }

        deadline[0] = System.nanoTime() + RUN_NANOS;
        List<Conn> conns = new ArrayList<>();
        long hardStop = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        try {
            for (int i = 0; i < connections; i++) {
                Conn c = new Conn();
                conns.add(c);
                c.next(true);
            }
            // Keep the load up until the deadline: closed connections are replaced.
            while (true) {
                Runnable task = ownerQueue.poll(10, TimeUnit.MILLISECONDS);
                if (task != null) {
                    task.run();
                }
                if (failure.get() != null) {
                    throw new AssertionError("completer failed (seed " + seed + ")", failure.get());
                }
                if (System.nanoTime() < deadline[0]) {
                    for (int i = 0; i < conns.size(); i++) {
                        if (conns.get(i).closed) {
                            Conn c = new Conn();
                            conns.set(i, c);
                            c.next(true);
                        }
                    }
                } else if (conns.stream().allMatch(c -> c.closed)) {
                    break;
                }
                assertTrue(System.nanoTime() < hardStop, "jobs did not all end (seed " + seed + "): "
                        + tracks.stream().filter(t -> !t.job.isDone()).map(t -> t.id + ":" + t.job).toList());
            }
        } finally {
            completers.shutdownNow();
            assertTrue(completers.awaitTermination(5, TimeUnit.SECONDS));
        }

        int abandoned = 0;
        int finished = 0;
        int errs = 0;
        for (Track tr : tracks) {
            String what = "job " + tr.id + " mode " + tr.mode + " " + tr.job + " (seed " + seed + ")";
            assertEquals(1, tr.ends, "ends exactly once: " + what);
            assertTrue(tr.wins.get() <= 1, "at most one completion wins: " + what);
            if (tr.abandoned) {
                abandoned++;
                assertEquals(AsyncJob.State.ABANDONED, tr.job.state(), what);
                assertThrows(IllegalStateException.class, tr.job::result, what);
                assertNull(tr.job.failure(), what);
                continue;
            }
            assertEquals(AsyncJob.State.FINISHED, tr.job.state(), what);
            switch (tr.mode) {
                case MODE_SYNC, MODE_COMPLETE, MODE_EAGAIN_ONCE -> {
                    finished++;
                    assertEquals(AsyncStartResult.FINISH, tr.endedWith, what);
                    assertEquals(tr.id * 31, tr.job.result(), what);
                }
                case MODE_FAIL -> {
                    errs++;
                    assertEquals(AsyncStartResult.ERR, tr.endedWith, what);
                    assertEquals("engine failure " + tr.id, tr.job.failure().getMessage(), what);
                }
                case MODE_STATUS_ERR -> {
                    errs++;
                    assertEquals(AsyncStartResult.ERR, tr.endedWith, what);
                    assertInstanceOf(AsyncEngineException.class, tr.job.failure(), what);
                }
                default -> fail("mode " + tr.mode);
            }
            if (tr.mode == MODE_COMPLETE || tr.mode == MODE_FAIL || tr.mode == MODE_EAGAIN_ONCE) {
                assertEquals(1, tr.wins.get(), "the delivered result came from exactly one completer: " + what);
            }
        }
        // Signals of finished jobs may still be queued; running them must not disturb anything.
        Runnable late;
        while ((late = ownerQueue.poll()) != null) {
            late.run();
        }
        assertEquals(0, pool.inFlight(), "every slot returned (seed " + seed + ")");
        assertEquals(0, pool.waiting(), "no one left waiting (seed " + seed + ")");
        assertTrue(abandoned > 0 && finished > 0 && errs > 0, "all outcomes happened: " + tracks.size() + " jobs, "
                + finished + " finished, " + errs + " failed, " + abandoned + " abandoned");
        System.out.println("AsyncJob race: " + tracks.size() + " jobs, " + finished + " finished, " + errs
                + " failed, " + abandoned + " abandoned (seed " + seed + ")");
    }

    private final long[] deadline = new long[1];
}
