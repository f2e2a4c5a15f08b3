package io.asyncctx;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayDeque;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;

/**
 * Threading: not thread-safe: every method is called on the owner thread, the same thread that starts,
 * resumes and abandons the pool's jobs. Waiters are run on that thread through the {@code owner} executor given at
 * construction (the event loop), never inline in the call that freed the slot.
 *
 * <p>Bounds the {@link AsyncJob}s in flight on one owner thread (one event loop), the counterpart of the job pool of
 * OpenSSL's {@code ASYNC_init_thread(max_size, ...)}: when all slots are taken, {@link AsyncJob#start()} answers
 * {@link AsyncStartResult#NO_JOBS} and the caller waits for a slot with {@link #awaitSlot}, without blocking.
 *
 * <p><b>Order.</b> Waiters are served first in, first out. While anyone waits, a new job cannot jump the queue: its
 * start answers NO_JOBS even if a slot has just been freed, and it queues behind the others.
 *
 * <p><b>Gauges.</b> {@link #inFlight()} and {@link #waiting()} may also be read from any thread (a metrics scrape): the
 * owner thread is their only writer and publishes each change with a release store, read with an acquire load, so
 * another thread sees a value the pool really had (recent, not necessarily current). No lock, no atomic
 * read-modify-write on the owner's path.
 */
public final class AsyncJobPool {

    private final int maxJobs;
    private final Executor owner;
    private final ArrayDeque<Runnable> waiters = new ArrayDeque<>();
    private static final VarHandle IN_FLIGHT;
    private static final VarHandle WAITING;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            IN_FLIGHT = lookup.findVarHandle(AsyncJobPool.class, "inFlight", int.class);
            WAITING = lookup.findVarHandle(AsyncJobPool.class, "waiting", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final Runnable drainTask = this::drain;
    /** Written by the owner only (release stores); read plainly there and with acquire loads elsewhere. */
    private int inFlight;
    /** {@code waiters.size()}, published the same way: ArrayDeque itself must not be read by another thread. */
    private int waiting;
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

    /** Jobs started and not yet finished or abandoned. Any thread (exact on the owner thread). */
    public int inFlight() {
        return (int) IN_FLIGHT.getAcquire(this);
    }

    /** Callers waiting for a slot. Any thread (exact on the owner thread). */
    public int waiting() {
        return (int) WAITING.getAcquire(this);
    }

    /**
     * Queues {@code waiter} to run on the owner thread when a slot is free; it should then start its job again (which
     * then succeeds unless the waiter was slow to do so). A waiter that no longer needs a slot simply returns, and the
     * next waiter runs. Runs soon (through the owner executor) when a slot is free already.
     */
    public void awaitSlot(Runnable waiter) {
        Objects.requireNonNull(waiter, "waiter");
        waiters.addLast(waiter);
        WAITING.setRelease(this, waiting + 1);
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
        if (!waiters.removeFirstOccurrence(waiter)) {
            return false;
        }
        WAITING.setRelease(this, waiting - 1);
        return true;
    }

    boolean tryAcquire() {
        if (inFlight >= maxJobs || (!draining && !waiters.isEmpty())) {
            return false;
        }
        IN_FLIGHT.setRelease(this, inFlight + 1);
        return true;
    }

    void release() {
        if (inFlight <= 0) {
            throw new IllegalStateException("release: no job in flight (a job released its slot twice)");
        }
        IN_FLIGHT.setRelease(this, inFlight - 1);
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
                WAITING.setRelease(this, waiting - 1);
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
