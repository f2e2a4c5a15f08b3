package io.asyncctx.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncJobPool;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncStatus;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.ChangedFds;
import io.asyncctx.testkit.Await;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Drives one operation through a real AsyncWaitCtx, AsyncJob and AsyncJobPool on the calling thread (the owner),
 * either on the callback path (a callback that counts down a latch) or on the fd path (an {@link Await} on
 * EventFd.drain of the wait fd: bounded, it fails naming the fd). Test-only; not thread-safe.
 */
final class EngineDriver implements AutoCloseable {

    static final long WAIT_NANOS = TimeUnit.SECONDS.toNanos(20);

    final Executor owner = Runnable::run;
    final AsyncJobPool pool = new AsyncJobPool(16, owner);
    final AsyncWaitCtx ctx = new AsyncWaitCtx();
    final EngineSession session;
    final boolean callback;
    final AtomicInteger callbacks = new AtomicInteger();
    private volatile CountDownLatch latch = new CountDownLatch(1);
    int waitFd = -1;

    EngineDriver(AsyncEngine engine, boolean callback) {
        this.callback = callback;
        if (callback) {
            ctx.setCallback(arg -> {
                callbacks.incrementAndGet();
                ((CountDownLatch) arg).countDown();
                return 1;
            }, null);
        }
        this.session = engine.newSession(ctx, owner);
    }

    /** Starts a job for {@code op}; returns it paused (or already ended). */
    AsyncJob<byte[]> start(KeyOperation op) {
        if (callback) {
            latch = new CountDownLatch(1);
            ctx.setCallback(ctx.getCallback(), latch);
        }
        AsyncJob<byte[]> job = new AsyncJob<>(pool, ctx, j -> session.submit(j, op));
        AsyncStartResult r = job.start();
        noteFds();
        if (r == AsyncStartResult.PAUSE && ctx.getStatus() != AsyncStatus.EAGAIN) {
            assertEquals(callback ? AsyncStatus.OK : AsyncStatus.UNSUPPORTED, ctx.getStatus(), "status after pause");
        }
        return job;
    }

    /** Waits for the signal (callback latch or readable wait fd), then resumes until the job ends. */
    AsyncStartResult awaitAndResume(AsyncJob<byte[]> job) throws InterruptedException {
        while (!job.isDone()) {
            awaitSignal();
            AsyncStartResult r = job.resume();
            noteFds();
            if (r != AsyncStartResult.PAUSE) {
                return r;
            }
        }
        return job.failure() == null ? AsyncStartResult.FINISH : AsyncStartResult.ERR;
    }

    /** Runs {@code op} to the end and returns the result, or fails the test with the job's failure. */
    byte[] run(KeyOperation op) throws InterruptedException {
        AsyncJob<byte[]> job = start(op);
        AsyncStartResult r = job.isDone() ? finished(job) : awaitAndResume(job);
        if (r != AsyncStartResult.FINISH) {
            throw new AssertionError("job ended with " + r, job.failure());
        }
        return job.result();
    }

    /** Runs {@code op} to the end and returns its failure; fails the test when it succeeds. */
    Throwable runExpectingFailure(KeyOperation op) throws InterruptedException {
        AsyncJob<byte[]> job = start(op);
        AsyncStartResult r = job.isDone() ? finished(job) : awaitAndResume(job);
        assertEquals(AsyncStartResult.ERR, r, "the job should end with ERR");
        return job.failure();
    }

    private static AsyncStartResult finished(AsyncJob<byte[]> job) {
        return job.failure() == null ? AsyncStartResult.FINISH : AsyncStartResult.ERR;
    }

    void awaitSignal() throws InterruptedException {
        if (callback) {
            assertTrue(latch.await(WAIT_NANOS, TimeUnit.NANOSECONDS), "the callback was not called in time");
            return;
        }
        assertTrue(waitFd >= 0, "no wait fd was set on the ctx");
        int fd = waitFd;
        Await.until("wait fd " + fd + " to turn readable", Duration.ofNanos(WAIT_NANOS), () -> EventFd.drain(fd));
    }

    private void noteFds() {
        ChangedFds changed = ctx.getChangedFds();
        if (changed.added().length > 0) {
            waitFd = changed.added()[0];
        }
    }

    @Override
    public void close() {
        session.close();
        ctx.close();
    }
}
