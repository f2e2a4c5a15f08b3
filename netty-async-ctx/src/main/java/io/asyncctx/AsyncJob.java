package io.asyncctx;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Objects;

/**
 * Threading: {@link #start()}, {@link #resume()} and {@link #abandon()} are called on the job's owner thread
 * (the thread that owns the ctx and the {@link AsyncJobPool}; in the Netty integration the channel's event loop).
 * {@link #complete} and {@link #fail} may be called from any thread, at any time after the operation was handed to an
 * engine, even before {@link #start()} has returned (an engine may signal before the job has paused, as OpenSSL's
 * dasync engine does). State queries may be called from any thread.
 *
 * <p>One offloaded operation of one connection, the counterpart of OpenSSL's {@code ASYNC_JOB}: it runs an
 * {@link AsyncOperation} for an {@link AsyncWaitCtx}, pauses while an engine works, and resumes when the engine's
 * completion has been signalled through the ctx (a readable wait fd, or the callback).
 *
 * <p><b>Life cycle.</b> {@code NEW -> RUNNING -> PAUSED <-> RESUMING -> FINISHED}, or {@code ABANDONED} from any
 * non-terminal state. A job holds a slot of its pool from a successful start until it finishes or is abandoned; it
 * binds its ctx for the same span (one job per ctx at a time; the ctx may serve another job afterwards).
 *
 * <p><b>Rules.</b> Each resume first clears the ctx's change set (as {@code ASYNC_pause_job} does on return), so read
 * {@link AsyncWaitCtx#getChangedFds()} after every {@link AsyncStartResult#PAUSE} and before the next resume. A resume
 * without a completion (a spurious wake-up) leaves the job paused. A resume after the engine answered
 * {@link AsyncStatus#EAGAIN} runs the operation again. Before each run of the operation the job resets the ctx's status
 * to {@link AsyncStatus#UNSUPPORTED}, so an EAGAIN or ERR of an earlier attempt is never read twice. A completion that
 * arrives after the job was abandoned is dropped: it touches nothing but this object.
 *
 * @param <T> the result type
 */
public final class AsyncJob<T> {

    /** Threading: an enum, any thread. Where a job is in its life. */
    public enum State {
        /** Created; not started yet, or its start found no free job ({@link AsyncStartResult#NO_JOBS}). */
        NEW,
        /** Its operation is running on the owner thread (inside {@link #start()} or a retrying {@link #resume()}). */
        RUNNING,
        /** Waiting for the engine; no completion has arrived yet. */
        PAUSED,
        /** A completion (result or failure) has arrived; the next {@link #resume()} finishes the job. */
        RESUMING,
        /** Ended with a result or a failure; its slot and its ctx are released. */
        FINISHED,
        /** Given up by its owner (the connection went away, a deadline passed); late completions are dropped. */
        ABANDONED
    }

    private static final State[] STATES = State.values();
    private static final int NEW = 0;
    private static final int RUNNING = 1;
    private static final int PAUSED = 2;
    private static final int RESUMING = 3;
    private static final int FINISHED = 4;
    private static final int ABANDONED = 5;

    private static final Object NULL_RESULT = new Object();
    private static final VarHandle STATE;
    private static final VarHandle OUTCOME;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            STATE = lookup.findVarHandle(AsyncJob.class, "state", int.class);
            OUTCOME = lookup.findVarHandle(AsyncJob.class, "outcome", Object.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Wraps a failure so that it cannot be confused with a result. */
    private record Failure(Throwable cause) {
    }

    private final AsyncJobPool pool;
    private final AsyncWaitCtx ctx;
    private final AsyncOperation<T> operation;

    private volatile int state = NEW;
    private volatile Object outcome;
    private int runs;
    private Object attachment;
    private long startedNanos;
    private volatile long completedNanos;
    private Runnable resumeListener;

    /**
     * Creates a job that will run {@code operation} for {@code ctx} in a slot of {@code pool}. Nothing runs until
     * {@link #start()}.
     */
    public AsyncJob(AsyncJobPool pool, AsyncWaitCtx ctx, AsyncOperation<T> operation) {
        this.pool = Objects.requireNonNull(pool, "pool");
        this.ctx = Objects.requireNonNull(ctx, "ctx");
        this.operation = Objects.requireNonNull(operation, "operation");
    }

    /**
     * Starts the job ({@code ASYNC_start_job} for a new job). Owner thread.
     *
     * @return {@link AsyncStartResult#PAUSE} when the operation is in flight; {@link AsyncStartResult#FINISH} or
     *     {@link AsyncStartResult#ERR} when it ended already (ERR also when the operation abandoned its own job);
     *     {@link AsyncStartResult#NO_JOBS} when the pool is full (the job stays {@link State#NEW}: wait with
     *     {@link AsyncJobPool#awaitSlot} and call start again)
     * @throws IllegalStateException when the job was started already or abandoned, the ctx is closed, or the ctx serves
     *     another job
     */
    public AsyncStartResult start() {
        int s = state;
        if (s != NEW) {
            throw new IllegalStateException("start: job is " + STATES[s] + "; a job is started once");
        }
        if (ctx.isClosed()) {
            throw new IllegalStateException("start: the job's AsyncWaitCtx is closed");
        }
        if (ctx.currentJob != null) {
            throw new IllegalStateException("start: the AsyncWaitCtx already serves another job; a ctx serves one "
                    + "job at a time, start this one after that job ends");
        }
        if (!pool.tryAcquire()) {
            return AsyncStartResult.NO_JOBS;
        }
        ctx.currentJob = this;
        startedNanos = System.nanoTime();
        state = RUNNING;
        return runOperation();
    }

    /**
     * Resumes the paused job ({@code ASYNC_start_job} for a paused job). Owner thread. Clears the ctx's change set
     * first.
     *
     * @return {@link AsyncStartResult#FINISH} or {@link AsyncStartResult#ERR} when a completion had arrived;
     *     {@link AsyncStartResult#PAUSE} on a spurious resume, or when the operation was retried after EAGAIN and is
     *     in flight again; {@link AsyncStartResult#ERR} also when the ctx was closed under the paused job
     * @throws IllegalStateException when the job is not paused (new, running, finished or abandoned)
     */
    public AsyncStartResult resume() {
        int s = state;
        if (s != PAUSED && s != RESUMING) {
            throw new IllegalStateException("resume: job is " + STATES[s] + "; only a paused job can be resumed");
        }
        ctx.resetChanges();
        if (s == RESUMING) {
            return finish();
        }
        if (ctx.isClosed()) {
            // Misuse (abandon jobs before closing their ctx), but never leave the slot held by a job that cannot run.
            settle(new Failure(new IllegalStateException("resume: the job's AsyncWaitCtx was closed while the job was "
                    + "paused; abandon the job before closing its ctx")));
            return finish();
        }
        if (ctx.getStatus() != AsyncStatus.EAGAIN) {
            // Spurious wake-up, unless a completion raced in just now.
            return state == RESUMING ? finish() : AsyncStartResult.PAUSE;
        }
        if (!STATE.compareAndSet(this, PAUSED, RUNNING)) {
            return finish(); // a completion arrived despite EAGAIN: take it
        }
        return runOperation();
    }

    /**
     * Gives the job up: its slot and its ctx are released at once and any later completion is dropped. Owner thread.
     * The caller tells the engine to cancel, if it can.
     *
     * @return true when the job was live (new, running, paused or resuming), false when it had already ended
     */
    public boolean abandon() {
        for (;;) {
            int s = state;
            if (s == FINISHED || s == ABANDONED) {
                return false;
            }
            if (STATE.compareAndSet(this, s, ABANDONED)) {
                if (s != NEW) {
                    release();
                }
                return true;
            }
        }
    }

    /**
     * Delivers the operation's result. Any thread; the first of {@link #complete}/{@link #fail} wins.
     * After this the engine signals the ctx (writes its wait fd or calls the callback).
     *
     * @return true when the result was taken and the job is live; false for a duplicate completion or a job that was
     *     abandoned, ended or not started yet (the result is dropped)
     */
    public boolean complete(T result) {
        return settle(result == null ? NULL_RESULT : result);
    }

    /**
     * Delivers the operation's failure. Any thread; the first of {@link #complete}/{@link #fail} wins.
     *
     * @return as {@link #complete}
     */
    public boolean fail(Throwable cause) {
        return settle(new Failure(Objects.requireNonNull(cause, "cause")));
    }

    /** The job's state now. Any thread. */
    public State state() {
        return STATES[state];
    }

    /** True when the job has finished or was abandoned. Any thread. */
    public boolean isDone() {
        int s = state;
        return s == FINISHED || s == ABANDONED;
    }

    /** True when a completion has arrived and the next resume will finish the job. Any thread. */
    public boolean isCompletionPending() {
        return state == RESUMING;
    }

    /**
     * The result of a job that finished without failure.
     *
     * @throws IllegalStateException when the job has not finished or has failed
     */
    @SuppressWarnings("unchecked")
    public T result() {
        Object o = outcome;
        if (state != FINISHED || o instanceof Failure) {
            throw new IllegalStateException("result: job is " + state() + (o instanceof Failure ? " (failed)" : "")
                    + "; read the result after FINISH");
        }
        return o == NULL_RESULT ? null : (T) o;
    }

    /** Why the job failed, or null when it has not failed (or has not ended). Any thread. */
    public Throwable failure() {
        Object o = outcome;
        return state == FINISHED && o instanceof Failure f ? f.cause() : null;
    }

    /** The ctx this job runs for. */
    public AsyncWaitCtx waitCtx() {
        return ctx;
    }

    /** The pool this job takes its slot from. */
    public AsyncJobPool pool() {
        return pool;
    }

    /** How many times the operation has been run (1 plus the EAGAIN retries). Owner thread. */
    public int runs() {
        return runs;
    }

    /** {@link System#nanoTime()} when the job started (took its slot); 0 before. Owner thread. */
    public long startedNanos() {
        return startedNanos;
    }

    /** {@link System#nanoTime()} when the completion (result or failure) arrived; 0 before. Any thread. */
    public long completedNanos() {
        return completedNanos;
    }

    /**
     * Sets what runs when a completion arrives for this job while it is paused: on the completing thread, right after
     * the completion is recorded and before the engine signals the ctx. It must be small and non-blocking (queue the
     * job for its owner and return). Not called for a completion that arrives while the operation is still running:
     * {@link #start()} or {@link #resume()} returns FINISH or ERR for it. Owner thread, before {@link #start()}.
     */
    public void setResumeListener(Runnable listener) {
        if (state != NEW) {
            throw new IllegalStateException("setResumeListener: set it before start()");
        }
        this.resumeListener = listener;
    }

    /** Attaches an object for the owner's bookkeeping (for example the connection's state). Owner thread. */
    public void attach(Object attachment) {
        this.attachment = attachment;
    }

    /** The attached object, or null. Owner thread. */
    public Object attachment() {
        return attachment;
    }

    private AsyncStartResult runOperation() {
        runs++;
        try {
            // Inside the try: a ctx closed under a paused job makes the retry fail the job, not escape half-done.
            ctx.setStatus(AsyncStatus.UNSUPPORTED);
            operation.run(this);
        } catch (Throwable t) {
            settle(new Failure(t));
        }
        if (state == RUNNING && outcome == null && ctx.getStatus() == AsyncStatus.ERR) {
            settle(new Failure(new AsyncEngineException("the engine reported ASYNC_STATUS_ERR for this operation")));
        }
        if (STATE.compareAndSet(this, RUNNING, PAUSED)) {
            return AsyncStartResult.PAUSE;
        }
        if (state == ABANDONED) {
            // The operation abandoned its own job (re-entrantly, on the owner thread): slot and ctx are released.
            return AsyncStartResult.ERR;
        }
        // A completion arrived while the operation was running (synchronous, or before the pause): state RESUMING.
        return finish();
    }

    private AsyncStartResult finish() {
        state = FINISHED;
        release();
        return outcome instanceof Failure ? AsyncStartResult.ERR : AsyncStartResult.FINISH;
    }

    private void release() {
        if (ctx.currentJob == this) {
            ctx.currentJob = null;
        }
        pool.release();
    }

    private boolean settle(Object value) {
        if (state == NEW) {
            // Not started: no operation was handed out, so this completion belongs to no run. Keep the job clean.
            return false;
        }
        if (!OUTCOME.compareAndSet(this, null, value)) {
            return false;
        }
        completedNanos = System.nanoTime(); // before the state CAS below publishes it
        for (;;) {
            int s = state;
            if (s != RUNNING && s != PAUSED) {
                return false; // abandoned (or never started): dropped
            }
            if (STATE.compareAndSet(this, s, RESUMING)) {
                Runnable listener = resumeListener;
                if (s == PAUSED && listener != null) {
                    listener.run(); // a paused job now needs a resume; a running one is finished by its own run
                }
                return true;
            }
        }
    }

    @Override
    public String toString() {
        return "AsyncJob[" + state() + ", runs=" + runs + ']';
    }
}
