package io.asyncctx.testkit;

import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncJobPool;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncStatus;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.KeyOperation;

import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A plain single-thread owner (an event loop stand-in) with its job pool, and the connections it drives. The callback
 * path hands each signal to the owner thread, resumes a paused job and counts what it saw.
 */
final class TestOwner implements AutoCloseable {

    /** One connection: its ctx, engine session and job, with what its owner observed. Owner thread. */
    static final class Conn {
        final AsyncWaitCtx ctx = new AsyncWaitCtx();
        final KeyOperation op;
        EngineSession session;
        AsyncJob<byte[]> job;
        /** Callbacks received (any thread). */
        final AtomicInteger callbacks = new AtomicInteger();
        /** Times the job ended (FINISH or ERR) on this owner: must never exceed 1. */
        final AtomicInteger ends = new AtomicInteger();
        /** Resumes that found no completion (the job stayed paused). */
        final AtomicInteger spuriousResumes = new AtomicInteger();
        /** Signals handled after the job had ended. */
        final AtomicInteger lateSignals = new AtomicInteger();

        Conn(KeyOperation op) {
            this.op = op;
        }

        /** What start() answered, and the ctx's status right after it. */
        AsyncStartResult startResult;
        AsyncStatus statusAfterStart;

        AsyncStartResult start() {
            startResult = ended(job.start());
            statusAfterStart = ctx.getStatus();
            return startResult;
        }

        AsyncStartResult resume() {
            AsyncStartResult r = job.resume();
            if (r == AsyncStartResult.PAUSE && !job.isDone()) {
                spuriousResumes.incrementAndGet();
            }
            return ended(r);
        }

        private AsyncStartResult ended(AsyncStartResult r) {
            if (r == AsyncStartResult.FINISH || r == AsyncStartResult.ERR) {
                ends.incrementAndGet();
            }
            return r;
        }
    }

    final ExecutorService executor;
    final AsyncJobPool pool;
    /** Jobs ended through the callback path. */
    final AtomicLong endedByCallback = new AtomicLong();

    TestOwner(int maxJobs) {
        executor = Executors.newSingleThreadExecutor(r -> new Thread(r, "test-owner"));
        pool = new AsyncJobPool(maxJobs, executor);
    }

    <T> T call(Callable<T> task) throws Exception {
        try {
            return executor.submit(task).get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Error err) {
                throw err;
            }
            throw e;
        }
    }

    /** {@link #call} for a condition of {@link Await}: a checked exception fails the test. */
    <T> T callUnchecked(Callable<T> task) {
        try {
            return call(task);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted waiting for the owner thread", e);
        } catch (Exception e) {
            throw new AssertionError("the owner task failed", e);
        }
    }

    /** Opens a connection (owner thread); with {@code callback} its ctx resumes through the callback. */
    Conn open(AsyncEngine engine, KeyOperation op, boolean callback) {
        Conn c = new Conn(op);
        c.session = engine.newSession(c.ctx, executor);
        c.job = new AsyncJob<>(pool, c.ctx, j -> c.session.submit(j, op));
        if (callback) {
            c.ctx.setCallback(arg -> {
                c.callbacks.incrementAndGet();
                executor.execute(() -> onSignal(c));
                return 1;
            }, null);
        }
        return c;
    }

    private void onSignal(Conn c) {
        AsyncJob.State s = c.job.state();
        if (s == AsyncJob.State.PAUSED || s == AsyncJob.State.RESUMING) {
            AsyncStartResult r = c.resume();
            if (r != AsyncStartResult.PAUSE) {
                endedByCallback.incrementAndGet();
            }
        } else {
            c.lateSignals.incrementAndGet();
        }
    }

    /** Closes the ctxs on the owner thread, as a connection's teardown does. */
    void closeAll(List<Conn> conns) throws Exception {
        call(() -> {
            for (Conn c : conns) {
                c.job.abandon();
                c.session.cancel(c.job);
                c.session.close();
                c.ctx.close();
            }
            return null;
        });
    }

    @Override
    public void close() throws InterruptedException {
        executor.shutdown();
        assertTrue(executor.awaitTermination(10, TimeUnit.SECONDS), "owner thread must stop");
    }
}
