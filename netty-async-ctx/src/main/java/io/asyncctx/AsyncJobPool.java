package io.asyncctx;

import java.util.ArrayDeque;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;

/**
 * Bounds the {@link AsyncJob}s in flight on one owner thread (one event loop), the counterpart of the job pool of
 * OpenSSL's {@code ASYNC_init_thread(max_size, ...)}: when all slots are taken, {@link AsyncJob#start()} answers
 * {@link AsyncStartResult#NO_JOBS} and the caller waits for a slot with {@link #awaitSlot}, without blocking.
 *
 * <p><b>Threading.</b> Not thread-safe: every method is called on the owner thread, the same thread that starts,
 * resumes and abandons the pool's jobs. Waiters are run on that thread through the {@code owner} executor given at
 * construction (the event loop), never inline in the call that freed the slot.
 *
 * <p><b>Order.</b> Waiters are served first in, first out. While anyone waits, a new job cannot jump the queue: its
 * start answers NO_JOBS even if a slot has just been freed, and it queues behind the others.
 */
public final class AsyncJobPool {

    private final int maxJobs;
    private final Executor owner;
    private final ArrayDeque<Runnable> waiters = new ArrayDeque<>();
    private final Runnable drainTask = this::drain;
    private int inFlight;
    private boolean drainScheduled;
    private boolean draining;

    /**
     * Creates a pool.
     *
     * @param maxJobs the most jobs in flight at once, at least 1
     * @param owner runs waiters on the owner thread (the event loop); not null
     */
    public AsyncJobPool(int maxJobs, Executor owner) {
        if (maxJobs < 1) {
            throw new IllegalArgumentException("maxJobs: " + maxJobs + " (expected at least 1)");
        }
        this.maxJobs = maxJobs;
        this.owner = Objects.requireNonNull(owner, "owner");
    }

    /** The most jobs in flight at once. */
    public int maxJobs() {
        return maxJobs;
    }

    /** Jobs started and not yet finished or abandoned. */
    public int inFlight() {
        return inFlight;
    }

    /** Callers waiting for a slot. */
    public int waiting() {
        return waiters.size();
    }

    /**
     * Queues {@code waiter} to run on the owner thread when a slot is free; it should then start its job again (which
     * then succeeds unless the waiter was slow to do so). A waiter that no longer needs a slot simply returns, and the
     * next waiter runs. Runs soon (through the owner executor) when a slot is free already.
     */
    public void awaitSlot(Runnable waiter) {
        Objects.requireNonNull(waiter, "waiter");
        waiters.addLast(waiter);
        if (inFlight < maxJobs) {
            scheduleDrain();
        }
    }

    /**
     * Removes a waiter queued with {@link #awaitSlot} (its connection went away).
     *
     * @return false when it was not waiting
     */
    public boolean cancelWait(Runnable waiter) {
        return waiters.removeFirstOccurrence(waiter);
    }

    boolean tryAcquire() {
        if (inFlight >= maxJobs || (!draining && !waiters.isEmpty())) {
            return false;
        }
        inFlight++;
        return true;
    }

    void release() {
        if (inFlight <= 0) {
            throw new IllegalStateException("release: no job in flight (a job released its slot twice)");
        }
        inFlight--;
        if (!waiters.isEmpty()) {
            scheduleDrain();
        }
    }

    private void scheduleDrain() {
        if (!drainScheduled && !draining) {
            drainScheduled = true;
            try {
                owner.execute(drainTask);
            } catch (RejectedExecutionException e) {
                // The owner is shutting down: its waiters will never run. Do not fail the finish or abandon that
                // freed the slot, and let a later release try again.
                drainScheduled = false;
            }
        }
    }

    private void drain() {
        drainScheduled = false;
        draining = true;
        try {
            while (inFlight < maxJobs && !waiters.isEmpty()) {
                Runnable waiter = waiters.pollFirst();
                try {
                    waiter.run();
                } catch (RuntimeException e) {
                    // A broken waiter must not stall the others; it has lost its turn.
                    Thread t = Thread.currentThread();
                    t.getUncaughtExceptionHandler().uncaughtException(t, e);
                }
            }
        } finally {
            draining = false;
        }
    }

    @Override
    public String toString() {
        return "AsyncJobPool[inFlight=" + inFlight + '/' + maxJobs + ", waiting=" + waiters.size() + ']';
    }
}
