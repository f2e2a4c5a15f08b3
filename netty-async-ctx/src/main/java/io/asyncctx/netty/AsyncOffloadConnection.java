package io.asyncctx.netty;

import io.asyncctx.AsyncEngineException;
import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncJobPool;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncStatus;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.KeyOperation;
import io.netty.channel.IoEventLoop;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;

import java.nio.channels.ClosedChannelException;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.RejectedExecutionException;

/**
 * One connection's offload state: its {@link AsyncWaitCtx}, its {@link EngineSession} and the operation in flight.
 * {@link #submit} runs a {@link KeyOperation} as an {@link AsyncJob} on the connection's event loop; the job pauses
 * while the engine works and is resumed on the loop when its wait fd turns readable (fd path) or its callback fires
 * (callback path).
 *
 * <p><b>Threading.</b> Event-loop confined: {@link #open}, {@link #submit}, {@link #close()} and the getters are called
 * on the loop's thread ({@link #close()} from another thread is handed to the loop). The returned futures complete on
 * the loop, so their listeners run there. The ctx's callback, called by the engine on any thread, only hands the
 * resume to the loop ({@code loop.execute}) and returns.
 *
 * <p><b>Fallback.</b> With {@link OffloadConfig#fallbackEngine()}, an operation that the primary engine ends in ERR, or
 * that exhausts its EAGAIN retries, runs again as a new job on the fallback engine: a second {@link EngineSession} on
 * the same ctx, opened at the first fallback and closed with the connection; its wait fds go through the same registry
 * and are closed with the ctx. The deadline covers both attempts and does not trigger the fallback. See
 * {@link OffloadConfig} for the unhealthy-primary rule.
 *
 * <p><b>Ownership.</b> Whoever opens the connection closes it (typically when its channel closes). Closing abandons a
 * job in flight, releases the ctx's wait fds from the loop and closes the ctx (whose cleanup closes the engine's fds)
 * once every released registration has really left the loop. When the loop shuts down, its open connections are
 * closed for you.
 *
 * <p><b>Structure.</b> This class is the job flow: start, pause, resume, EAGAIN retry, deadline, fallback and close of
 * the one operation in flight, as transitions of one {@link State} (the operation's data, its promise, job and
 * session, are plain fields that the state says how to read). Each other concern is a collaborator with its
 * own tests: {@link ConnectionWaitFds} (the wait fds in the loop's registry), {@link OperationTimers} (deadline and
 * EAGAIN backoff), {@link EngineRouter} (primary or fallback, health), {@link CallbackWakeups} (the callback path and
 * its spurious count) and {@link OperationRecorder} (metrics and JFR). It stays above the ~450-line guide because the
 * transitions share the operation's state and must be read together (each failure path decides whether the fallback
 * runs, what is cancelled and what is counted); about half of its lines are the javadoc of its public methods.
 */
public final class AsyncOffloadConnection implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(AsyncOffloadConnection.class.getName());
    private static final java.util.concurrent.atomic.AtomicLong IDS = new java.util.concurrent.atomic.AtomicLong();

    private final IoEventLoop loop;
    private final LoopState loopState;
    private final WaitFdRegistry registry;
    private final AsyncEngine engine;
    private final OffloadConfig config;
    private final OffloadConfig.Notify notify;
    private final AsyncWaitCtx ctx;
    private final EngineRouter router;
    private final ConnectionWaitFds waitFds;
    private final OperationTimers timers;
    private final AsyncJobPool pool;
    /** Callback path: the ctx callback's argument; hands resumes to the loop. Null on the fd path. */
    private final CallbackWakeups callbackWakeups;
    /** Fd path: the job's resume listener, run on the completing thread; queues this connection for the wake-up. */
    private final Runnable markReady = this::markReady;
    /**
     * Fd path: runs of this connection's jobs, counted on the loop before each run of an operation. Read by the
     * completing thread to tell whether {@link #readyRoute} belongs to the run that paused. Not volatile: the loop
     * counts it before the run's pause (a CAS of the job's state) and the completing thread reads it after its own CAS
     * of that state from PAUSED, so it sees the count of the run that paused.
     */
    private int runs;
    /** Fd path: where the completion of the run that paused will be signalled, published by the loop after the pause. */
    private volatile ReadyRoute readyRoute;
    private final long id = IDS.incrementAndGet();
    private final OperationRecorder recorder;

    // The operation in flight (all null when idle).
    private KeyOperation op;
    private Promise<byte[]> promise;
    private AsyncJob<byte[]> job;
    private Runnable slotWaiter;
    /** The session that runs the current job (the primary's or the fallback's). */
    private EngineSession jobSession;

    /** Where the connection is; the fields above hold the operation's data, this says what it is doing. */
    private State state = State.IDLE;

    /** This connection's resume as a step of the loop's handshake budget, or null when the budget is off. */
    private final HandshakeTurns.Step turnStep;
    // Counters for tests and metrics (loop thread).
    private int resumes;
    private int spuriousWakeups;

    /** The connection's states: one operation at a time, then closing. Loop thread. */
    enum State {
        /** No operation in flight. */
        IDLE,
        /** The operation's job waits for a free slot of the loop's job pool (NO_JOBS). */
        WAITING_FOR_SLOT,
        /** The operation's job runs in its engine: started, paused, or being resumed. */
        IN_ENGINE,
        /** The engine answered EAGAIN; the job is resumed after a backoff. */
        BACKING_OFF,
        /** Closed; the released wait-fd registrations are still leaving the loop, so the ctx stays open. */
        CLOSING,
        /** Closed, and the ctx is closed too. */
        CLOSED;

        boolean isClosed() {
            return this == CLOSING || this == CLOSED;
        }
    }

    private AsyncOffloadConnection(IoEventLoop loop, LoopState loopState, AsyncEngine engine, OffloadConfig config,
                                   OffloadConfig.Notify notify) {
        this.loop = loop;
        this.loopState = loopState;
        this.registry = loopState.registry;
        this.engine = engine;
        this.config = config;
        this.notify = notify;
        this.waitFds = new ConnectionWaitFds(registry, this);
        this.timers = new OperationTimers(loop, config);
        this.pool = loopState.pool(config.maxJobsPerLoop());
        this.recorder = new OperationRecorder(loopState, config.metrics(), engine, id);
        this.turnStep = config.handshakeStepsPerLoopTurn() > 0
                ? new HandshakeTurns.Step(config.handshakeStepsPerLoopTurn(), this::resumeIfReady) : null;
        this.callbackWakeups = notify == OffloadConfig.Notify.CALLBACK
                ? new CallbackWakeups(loop, () -> state.isClosed(), this::resumeIfReady, this::onSpuriousWakeup) : null;
        AsyncWaitCtx c = new AsyncWaitCtx();
        boolean success = false;
        try {
            if (notify == OffloadConfig.Notify.CALLBACK) {
                c.setCallback(CallbackWakeups.CALLBACK, callbackWakeups);
            }
            EngineSession session = Objects.requireNonNull(engine.newSession(c, loop), "engine.newSession returned null");
            this.router = new EngineRouter(engine, session, config.fallbackEngine(), loopState.health(engine), config);
            success = true;
        } finally {
            if (!success) {
                c.close();
            }
        }
        this.ctx = c;
    }

    /**
     * Opens a connection's offload state on {@code loop}. Call on the loop's thread.
     *
     * @param loop the channel's event loop
     * @param engine the engine that performs the operations
     * @param config the settings; {@link OffloadConfig#defaults()} for the defaults
     * @throws IllegalStateException when not called on the loop's thread, or the loop is shutting down
     * @throws IllegalArgumentException when {@link OffloadConfig.Notify#FD} is asked on a loop that cannot poll fds
     *     (not epoll or io_uring)
     */
    public static AsyncOffloadConnection open(IoEventLoop loop, AsyncEngine engine, OffloadConfig config) {
        Objects.requireNonNull(loop, "loop");
        Objects.requireNonNull(engine, "engine");
        Objects.requireNonNull(config, "config");
        if (!loop.inEventLoop()) {
            throw new IllegalStateException("open: call on the event loop's thread (loop.execute(...) or from a "
                    + "handler of the channel)");
        }
        if (loop.isShuttingDown()) {
            throw new IllegalStateException("open: event loop " + loop + " is shutting down");
        }
        WaitFdRegistry.Kind kind = WaitFdRegistry.kindOf(loop);
        OffloadConfig.Notify notify = config.notifyMode();
        if (notify == OffloadConfig.Notify.AUTO) {
            notify = kind == WaitFdRegistry.Kind.NONE ? OffloadConfig.Notify.CALLBACK : OffloadConfig.Notify.FD;
        } else if (notify == OffloadConfig.Notify.FD && kind == WaitFdRegistry.Kind.NONE) {
            throw new IllegalArgumentException("Notify.FD needs an epoll or io_uring event loop, but "
                    + loop.getClass().getName() + " cannot poll wait fds; use Notify.CALLBACK (or AUTO) on this loop");
        }
        LoopState state = LoopState.of(loop);
        if (state.isShutDown()) {
            throw new IllegalStateException("open: event loop " + loop + " is shutting down");
        }
        OffloadJfrEvents.register();
        AsyncOffloadConnection c = new AsyncOffloadConnection(loop, state, engine, config, notify);
        state.add(c);
        return c;
    }

    /**
     * Runs {@code operation} as an {@link AsyncJob}. Loop thread. One operation at a time: a second submit while one
     * is in flight fails its future with {@link IllegalStateException}.
     *
     * @return a future of {@code loop.newPromise()}, completed on the loop with the operation's bytes, or failed with
     *     {@link AsyncEngineException} (the engine failed, or kept answering EAGAIN; with a fallback engine: the
     *     fallback failed too, or could not be used), {@link AsyncOffloadTimeoutException} (the operation timeout
     *     passed), or {@link ClosedChannelException} (the connection was closed)
     */
    public Future<byte[]> submit(KeyOperation operation) {
        Objects.requireNonNull(operation, "operation");
        checkInLoop("submit");
        Promise<byte[]> p = loop.newPromise();
        if (state.isClosed()) {
            p.setFailure(new ClosedChannelException());
            return p;
        }
        if (promise != null) {
            p.setFailure(new IllegalStateException("submit: an operation is in flight on this connection; submit the "
                    + "next one after its future completes"));
            return p;
        }
        try {
            timers.startDeadline(() -> onTimeout(p));
        } catch (RejectedExecutionException e) {
            p.setFailure(new ClosedChannelException()); // the loop is shutting down
            return p;
        }
        op = operation;
        promise = p;
        if (router.skipPrimary(System.nanoTime())) {
            recorder.primarySkipped();
            runOnFallback(null);
        } else {
            runOn(router.usePrimary());
        }
        return p;
    }

    /** Starts the operation in flight as a new job on {@code s}. */
    private void runOn(EngineSession s) {
        KeyOperation operation = op;
        jobSession = s;
        timers.newAttempt();
        recorder.reset();
        job = new AsyncJob<>(pool, ctx, j -> s.submit(j, operation));
        if (notify == OffloadConfig.Notify.FD) {
            job.setResumeListener(markReady);
        }
        startJob();
    }

    /** Runs the operation in flight on the fallback engine ({@code cause}: why the primary was left, or null). */
    private void runOnFallback(Throwable cause) {
        EngineSession fs;
        try {
            fs = router.useFallback(ctx, loop, cause);
        } catch (AsyncEngineException failure) {
            fail(failure);
            return;
        }
        recorder.fallbackOperation();
        recorder.fallback(router.fallback());
        runOn(fs);
    }

    /**
     * The current engine could not do the operation (its job has ended or been abandoned): run it on the fallback when
     * the primary failed and there is one, else fail it.
     */
    private void onEngineFailure(Throwable cause) {
        if (!router.onFallback()) {
            recorder.primaryFailed();
        }
        router.attemptFailed(System.nanoTime());
        if (!router.canFallBack() || state.isClosed() || promise == null) {
            fail(router.finalFailure(cause));
            return;
        }
        job = null;
        runOnFallback(cause);
    }

    private AsyncEngine currentEngine() {
        return router.current();
    }

    private OffloadMetrics.Recorder currentRecorder() {
        return recorder.current(router.onFallback());
    }

    /**
     * Closes the connection's offload state. Loop thread (another thread's call is handed to the loop); idempotent.
     * A job in flight is abandoned (the engine is told to cancel it) and its future fails with
     * {@link ClosedChannelException}; a job waiting for a slot leaves the queue; the ctx's fds are released from the
     * loop and the ctx is closed once their registrations are gone.
     */
    @Override
    public void close() {
        if (!loop.inEventLoop()) {
            try {
                loop.execute(this::close);
            } catch (RejectedExecutionException e) {
                // The loop is gone: its termination listener closes what is left.
            }
            return;
        }
        if (state.isClosed()) {
            return;
        }
        // Failing the operation in flight below runs its listeners: they see the connection closed already.
        state = State.CLOSING;
        loopState.remove(this);
        if (promise != null) {
            // Only then: an exception's stack trace cost ~8 us per connection close under an h2load storm (issue 12).
            failInFlight(new ClosedChannelException());
        }
        registry.dropReady(this, signalEntry());
        router.close();
        if (waitFds.releaseAll()) {
            closeCtx();
        } else {
            loopState.addClosing(this);
        }
    }

    /** The connection's wait ctx. Loop thread. */
    public AsyncWaitCtx waitCtx() {
        return ctx;
    }

    /** True while a job is paused waiting for its engine (or for an EAGAIN retry). Loop thread. */
    public boolean isPaused() {
        AsyncJob<byte[]> j = job;
        return j != null && (j.state() == AsyncJob.State.PAUSED || j.state() == AsyncJob.State.RESUMING);
    }

    /** How this connection is notified: {@link OffloadConfig.Notify#FD} or {@link OffloadConfig.Notify#CALLBACK}. */
    public OffloadConfig.Notify notifyMode() {
        return notify;
    }

    /** The engine. */
    public AsyncEngine engine() {
        return engine;
    }

    /** The loop this connection is bound to. */
    public IoEventLoop eventLoop() {
        return loop;
    }

    /** True once {@link #close()} has run. Loop thread. */
    public boolean isClosed() {
        return state.isClosed();
    }

    /** The connection's state. Loop thread; for tests and toString. */
    State state() {
        return state;
    }

    /** True once the ctx has been closed (after close, when every released registration has left the loop). */
    boolean isCtxClosed() {
        return state == State.CLOSED;
    }

    /** The number of times a job of this connection was resumed with a completion pending. Loop thread. */
    int resumes() {
        return resumes;
    }

    /** Fd wake-ups and callbacks that found no completion pending. Loop thread. */
    int spuriousWakeups() {
        return spuriousWakeups;
    }

    /** The connection's wait-fd set. Loop thread; for tests. */
    ConnectionWaitFds waitFdSet() {
        return waitFds;
    }

    /** The fds this connection waits on, sorted. Loop thread; for tests. */
    int[] waitFds() {
        return waitFds.sorted();
    }

    // ---- job flow (loop thread) ----

    private void startJob() {
        state = State.IN_ENGINE;
        AsyncStartResult r;
        try {
            newRun();
            r = job.start();
        } catch (RuntimeException e) {
            abandonAndFail(e);
            return;
        }
        if (r == AsyncStartResult.NO_JOBS) {
            currentRecorder().noJobsWait();
        } else {
            currentRecorder().jobStarted();
        }
        onResult(r, true);
    }

    /**
     * @param ranOperation true when {@code r} comes from a run of the operation (a start, or a resume after EAGAIN),
     *     false when from a resume for a completion that was signalled
     */
    private void onResult(AsyncStartResult r, boolean ranOperation) {
        AsyncJob<byte[]> j = job;
        if (r != AsyncStartResult.NO_JOBS && r != AsyncStartResult.PAUSE) {
            // The operation may have changed the ctx's fds before it finished (a retry that completed at once): keep
            // the registry in step, so that nothing stale stays registered. A failure here is for the next pause.
            syncWaitFds(false);
            if (ranOperation) {
                expectLateSignal();
            }
        }
        switch (r) {
            case FINISH -> {
                currentRecorder().jobFinished(j.completedNanos() - j.startedNanos());
                succeed(j.result());
            }
            case ERR -> {
                currentRecorder().jobFailed(OffloadMetrics.FailureCause.ERR);
                onEngineFailure(engineFailure(j.failure()));
            }
            case NO_JOBS -> queueForSlot(j);
            case PAUSE -> onPause(j);
            default -> throw new AssertionError(r);
        }
    }

    private void onPause(AsyncJob<byte[]> j) {
        if (!syncWaitFds(true) || job != j) {
            return;
        }
        if (notify == OffloadConfig.Notify.FD) {
            readyRoute = new ReadyRoute(runs, signalEntry());
        }
        AsyncStatus status = ctx.getStatus();
        if (status == AsyncStatus.EAGAIN) {
            scheduleRetry(j);
            return;
        }
        recorder.paused(router.onFallback(), currentEngine(), op);
        if (status != AsyncStatus.OK && (waitFds.count() == 0 || !registry.supportsFds())) {
            if (j.isCompletionPending()) {
                resumeIfReady();
                return;
            }
            abandonAndFail(new AsyncEngineException("engine '" + currentEngine().name()
                    + "' paused the operation with status " + status + " and "
                    + (registry.supportsFds() ? "no wait fd" : "wait fds this loop cannot poll")
                    + ": nothing could resume it (use Notify.CALLBACK with an engine that calls the callback, or an "
                    + "epoll or io_uring loop)"));
        }
    }

    /**
     * Applies the ctx's changed fds to the loop's registry. False when an fd could not be registered; then the
     * operation has failed when {@code failOnError}.
     */
    private boolean syncWaitFds(boolean failOnError) {
        ConnectionWaitFds.Failure f = waitFds.sync(ctx);
        if (f == null) {
            return true;
        }
        if (failOnError) {
            abandonAndFail(new AsyncEngineException("could not wait on fd " + f.fd() + " of engine '"
                    + currentEngine().name() + "' on " + loop + ": " + f.cause(), f.cause()));
        }
        return false;
    }

    private void queueForSlot(AsyncJob<byte[]> j) {
        Runnable waiter = () -> onSlot(j);
        slotWaiter = waiter;
        state = State.WAITING_FOR_SLOT;
        pool.awaitSlot(waiter);
    }

    private void onSlot(AsyncJob<byte[]> j) {
        if (state.isClosed() || job != j || j.state() != AsyncJob.State.NEW) {
            return; // stale waiter: that operation ended meanwhile
        }
        slotWaiter = null;
        startJob();
    }

    private void scheduleRetry(AsyncJob<byte[]> j) {
        if (timers.retriesExhausted()) {
            int retries = timers.retries();
            abandonJob();
            currentRecorder().jobFailed(OffloadMetrics.FailureCause.EAGAIN_EXHAUSTED);
            onEngineFailure(new AsyncEngineException("engine '" + currentEngine().name() + "' answered EAGAIN "
                    + "(cannot take the operation now) " + (retries + 1) + " times; gave up after "
                    + retries + " retries (raise eagainMaxRetries or the engine's capacity)"));
            return;
        }
        currentRecorder().eagainRetry();
        state = State.BACKING_OFF;
        timers.scheduleRetry(() -> onRetry(j));
    }

    private void onRetry(AsyncJob<byte[]> j) {
        if (state.isClosed() || job != j) {
            return;
        }
        timers.retryRan();
        state = State.IN_ENGINE;
        AsyncJob.State s = j.state();
        if (s == AsyncJob.State.PAUSED || s == AsyncJob.State.RESUMING) {
            resumes++;
            newRun();
            onResult(j.resume(), true);
        }
    }

    private void onTimeout(Promise<byte[]> p) {
        if (promise != p) {
            return;
        }
        timers.deadlinePassed();
        recorder.operationTimedOut();
        currentRecorder().jobFailed(OffloadMetrics.FailureCause.DEADLINE);
        boolean engineHadIt = job != null && job.state() != AsyncJob.State.NEW;
        if (engineHadIt) {
            router.attemptFailed(System.nanoTime()); // not the engine's fault while queued
        }
        String what = engineHadIt ? "engine '" + currentEngine().name() + "' did not complete " + op
                : op + " waited for a free job (maxJobsPerLoop " + config.maxJobsPerLoop() + ") and did not reach "
                + "engine '" + currentEngine().name() + "'";
        abandonAndFail(new AsyncOffloadTimeoutException(what + " within the operation timeout of "
                + config.operationTimeout().toMillis() + " ms; the job was abandoned (raise operationTimeout or "
                + "check the engine)"));
    }

    // ---- resume paths (loop thread) ----

    /**
     * The job's operation ran and ended at once (its engine completed before the job could pause): the engine signals
     * that completion all the same (OpenSSL's engines do), so the wake-up it causes will find nothing to do and is
     * not spurious. Counted here so that it is not taken for one: per connection on the callback path, per loop on
     * the fd path (several connections may share the fd).
     */
    private void expectLateSignal() {
        AsyncStatus status = ctx.getStatus();
        if (notify == OffloadConfig.Notify.CALLBACK) {
            if (status == AsyncStatus.OK) {
                callbackWakeups.expectLateCallback(); // the engine was told to call back: it does so after completing
            }
        } else if (waitFds.count() > 0 && status != AsyncStatus.EAGAIN && status != AsyncStatus.ERR) {
            registry.expectSignal(signalEntry());
        }
    }

    /** A wake-up for this connection found nothing to do: counted and recorded. Loop thread. */
    void onSpuriousWakeup() {
        spuriousWakeups++;
        recorder.primary().spuriousWakeup();
    }

    /**
     * Completing thread: queues this connection for the wake-up its engine's fd signal is about to cause. (A
     * completion that races with {@link #close()} may queue it after the close dropped its entries; the signal that
     * follows takes it out again.)
     */
    private void markReady() {
        ReadyRoute r = readyRoute;
        // A route published before this run paused may name an fd the run has since replaced: the shared queue then.
        registry.markReady(this, r != null && r.run == runs ? r.entry : null);
    }

    /** A new run of the operation is about to start: routes published for earlier runs no longer apply. Loop. */
    private void newRun() {
        if (notify == OffloadConfig.Notify.FD) {
            runs++; // single writer (the loop); published to the completing thread by the job's state CAS
        }
    }

    /**
     * The fd on which this connection's engine will signal its completion when it waits on exactly one fd, else null
     * (several fds, or none: any fd may). Loop thread.
     */
    WaitFdRegistry.Entry signalEntry() {
        return waitFds.single();
    }

    /** Where the completion of run {@code run} is signalled: {@code entry}'s fd, or (null) any of several. */
    private record ReadyRoute(int run, WaitFdRegistry.Entry entry) {
    }

    /**
     * Resumes the job if its completion is pending. Loop thread. The fd path calls it for connections queued by their
     * job's resume listener: false there means the operation ended meanwhile (closed, timed out), not a spurious
     * wake-up.
     *
     * @return true when the job was resumed
     */
    boolean resumeIfReady() {
        if (!canResume()) {
            return false;
        }
        AsyncJob<byte[]> j = job;
        resumes++;
        recorder.resumed(router.onFallback(), currentEngine(), true);
        newRun();
        onResult(j.resume(), false);
        return true;
    }

    /** True when {@link #resumeIfReady()} would resume now: open, with a job whose completion is pending. Loop. */
    boolean canResume() {
        AsyncJob<byte[]> j = job;
        return !state.isClosed() && j != null && j.isCompletionPending();
    }

    /** This connection's resume as a step of the loop's handshake budget, or null when the budget is off. */
    HandshakeTurns.Step turnStep() {
        return turnStep;
    }

    /** A wait fd of this connection can no longer be polled: fail the operation in flight. Loop thread. */
    void onWaitFdFailed(int fd, Throwable failure) {
        if (job != null) {
            abandonAndFail(new AsyncEngineException("wait fd " + fd + " of engine '" + currentEngine().name()
                    + "' can no longer be polled on " + loop + ": " + failure, failure));
        }
    }

    /** One registration this connection released has left the loop. Loop thread. */
    void onUnregistered() {
        if (waitFds.onUnregistered() && state.isClosed()) {
            closeCtx();
        }
    }

    // ---- endings (loop thread) ----

    private void succeed(byte[] result) {
        router.attemptSucceeded();
        Promise<byte[]> p = clearOperation();
        if (p != null) {
            p.trySuccess(result);
        }
    }

    private void fail(Throwable cause) {
        Promise<byte[]> p = clearOperation();
        if (p != null) {
            p.tryFailure(cause);
        }
    }

    private void abandonAndFail(Throwable cause) {
        abandonJob();
        fail(cause);
    }

    private void failInFlight(Throwable cause) {
        if (promise != null) {
            currentRecorder().jobFailed(OffloadMetrics.FailureCause.CANCELLED);
            abandonAndFail(cause);
        }
    }

    private void abandonJob() {
        AsyncJob<byte[]> j = job;
        if (slotWaiter != null) {
            pool.cancelWait(slotWaiter);
            slotWaiter = null;
        }
        if (j != null) {
            boolean started = j.state() != AsyncJob.State.NEW;
            if (j.abandon() && started) {
                try {
                    recorder.operationCancelled();
                    jobSession.cancel(j);
                } catch (RuntimeException e) {
                    LOG.log(System.Logger.Level.DEBUG, "engine session cancel failed", e);
                }
            }
        }
    }

    /** Forgets the operation in flight (before completing its promise, whose listeners may submit the next one). */
    private Promise<byte[]> clearOperation() {
        Promise<byte[]> p = promise;
        timers.cancel();
        promise = null;
        op = null;
        job = null;
        recorder.reset();
        slotWaiter = null;
        jobSession = null;
        router.reset();
        if (!state.isClosed()) {
            state = State.IDLE;
        }
        return p;
    }

    private Throwable engineFailure(Throwable cause) {
        if (cause == null) {
            cause = new AsyncEngineException("no cause recorded");
        }
        return new AsyncEngineException("engine '" + currentEngine().name() + "' failed " + op + ": " + cause, cause);
    }

    private void closeCtx() {
        if (state == State.CLOSED) {
            return;
        }
        state = State.CLOSED;
        loopState.removeClosing(this);
        try {
            ctx.close();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.DEBUG, "wait ctx cleanup failed", e);
        }
    }

    /** After the loop has terminated (any thread, the loop's thread is gone): release everything left. */
    void closeAfterTermination() {
        if (!state.isClosed()) {
            state = State.CLOSING;
            if (job != null) {
                job.abandon();
            }
            Promise<byte[]> p = clearOperation();
            if (p != null) {
                p.tryFailure(new ClosedChannelException());
            }
            router.close();
        }
        // The loop's epoll set or ring is gone with it: no registration can outlive it.
        closeCtx();
    }

    private void checkInLoop(String what) {
        if (!loop.inEventLoop()) {
            throw new IllegalStateException(what + ": call on the connection's event loop thread");
        }
    }

    @Override
    public String toString() {
        return "AsyncOffloadConnection[" + engine.name() + ", " + notify + ", fds=" + Arrays.toString(waitFds())
                + (job != null ? ", " + job : "") + ", " + state + ']';
    }
}
