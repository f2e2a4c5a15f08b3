package io.asyncctx.netty;

import io.asyncctx.AsyncCallback;

import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicIntegerFieldUpdater;
import java.util.function.BooleanSupplier;

/**
 * The callback path of one connection: the ctx callback an engine calls on any thread hands the resume to the loop
 * (one queued task at a time, however many callbacks arrive meanwhile) and returns; the task resumes the job and tells
 * a spurious wake-up from a late one.
 *
 * <p>A task that finds nothing to do is spurious only when more callbacks came than completions were taken: a job
 * that finished before it paused still gets its engine's callback ({@link #expectLateCallback()}), and a task may take
 * a completion before that completion's callback has been counted. Either way the callback that follows is owed, not
 * spurious.
 *
 * <p><b>Threading.</b> {@link #CALLBACK} (through {@link #onCallback()}) on any thread; everything else on the loop.
 */
final class CallbackWakeups implements Runnable {

    /** The ctx callback; its argument is the connection's {@code CallbackWakeups}. */
    static final AsyncCallback CALLBACK = arg -> ((CallbackWakeups) arg).onCallback();

    private static final AtomicIntegerFieldUpdater<CallbackWakeups> CALLBACKS =
            AtomicIntegerFieldUpdater.newUpdater(CallbackWakeups.class, "callbacks");

    private final Executor loop;
    private final BooleanSupplier closed;
    private final BooleanSupplier resume;
    private final Runnable spurious;
    /** Callbacks received since the task last ran; the one that moves it from 0 queues the task. */
    private volatile int callbacks;
    /** Completions taken whose callback may still be on its way. Loop thread. */
    private int owed;

    /**
     * @param loop runs the task
     * @param closed true once the connection has closed (its late callbacks count for nothing)
     * @param resume resumes the job if its completion has arrived; true when it did
     * @param spurious records a spurious wake-up
     */
    CallbackWakeups(Executor loop, BooleanSupplier closed, BooleanSupplier resume, Runnable spurious) {
        this.loop = Objects.requireNonNull(loop, "loop");
        this.closed = closed;
        this.resume = resume;
        this.spurious = spurious;
    }

    /**
     * Any thread: the engine's completion signal. Queues the task unless one is queued already; small, never blocks.
     *
     * @return 1 when the resume is queued (or will be seen by the queued task), 0 when the loop refused it (shutting
     *     down; its shutdown closes the connection)
     */
    int onCallback() {
        if (CALLBACKS.getAndIncrement(this) != 0) {
            return 1;
        }
        try {
            loop.execute(this);
            return 1;
        } catch (RejectedExecutionException e) {
            callbacks = 0;
            return 0;
        }
    }

    /** Loop thread: a job finished before it paused and its engine was told to call back; that callback is owed. */
    void expectLateCallback() {
        owed++;
    }

    /** Loop thread: the queued task. */
    @Override
    public void run() {
        int n = CALLBACKS.getAndSet(this, 0);
        if (closed.getAsBoolean()) {
            return;
        }
        boolean resumed = resume.getAsBoolean();
        if (resumed) {
            owed++;
        }
        int matched = Math.min(n, owed);
        owed -= matched;
        if (!resumed && n > matched) {
            spurious.run();
        }
    }
}
