package io.asyncctx.netty;

import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.ScheduledFuture;

import java.util.concurrent.TimeUnit;

/**
 * The timers of one connection's operation in flight: its deadline ({@link OffloadConfig#operationTimeout()}) and the
 * EAGAIN retries with exponential backoff ({@link OffloadConfig#eagainInitialBackoff()} doubling up to
 * {@link OffloadConfig#eagainMaxBackoff()}, at most {@link OffloadConfig#eagainMaxRetries()} times).
 *
 * <p><b>Threading.</b> Owner-thread confined (the connection's event loop); the tasks run there.
 */
final class OperationTimers {

    private final EventExecutor loop;
    private final OffloadConfig config;
    private ScheduledFuture<?> deadline;
    private ScheduledFuture<?> retry;
    private int retries;

    OperationTimers(EventExecutor loop, OffloadConfig config) {
        this.loop = loop;
        this.config = config;
    }

    /**
     * Arms the deadline of a new operation, when the config has one.
     *
     * @throws java.util.concurrent.RejectedExecutionException when the loop is shutting down
     */
    void startDeadline(Runnable onTimeout) {
        long nanos = config.operationTimeout().toNanos();
        if (nanos > 0) {
            deadline = loop.schedule(onTimeout, nanos, TimeUnit.NANOSECONDS);
        }
    }

    /** The deadline fired: it is no longer pending. */
    void deadlinePassed() {
        deadline = null;
    }

    /** EAGAIN retries scheduled for the current attempt. */
    int retries() {
        return retries;
    }

    /** True when the current attempt has used all its EAGAIN retries. */
    boolean retriesExhausted() {
        return retries >= config.eagainMaxRetries();
    }

    /** The backoff before retry number {@code n} (0-based): the initial backoff doubled n times, capped. */
    long backoffNanos(int n) {
        long delay = config.eagainInitialBackoff().toNanos();
        long max = config.eagainMaxBackoff().toNanos();
        for (int i = 0; i < n && delay < max; i++) {
            delay = Math.min(delay * 2, max);
        }
        return delay;
    }

    /** Schedules the next EAGAIN retry after its backoff. */
    void scheduleRetry(Runnable task) {
        long delay = backoffNanos(retries);
        retries++;
        retry = loop.schedule(task, delay, TimeUnit.NANOSECONDS);
    }

    /** The retry ran: it is no longer pending. */
    void retryRan() {
        retry = null;
    }

    /** A new attempt (on the fallback engine) starts: its retries count from zero. */
    void newAttempt() {
        retries = 0;
    }

    /** The operation ended: cancels both timers and resets the retry count. */
    void cancel() {
        if (deadline != null) {
            deadline.cancel(false);
            deadline = null;
        }
        if (retry != null) {
            retry.cancel(false);
            retry = null;
        }
        retries = 0;
    }

    /** True while a deadline or a retry is scheduled; for tests. */
    boolean isArmed() {
        return deadline != null || retry != null;
    }
}
