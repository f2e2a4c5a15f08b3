package io.asyncctx.netty;

import io.asyncctx.AsyncCallback;
import io.asyncctx.AsyncEngineException;
import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncJobPool;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncStatus;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.ChangedFds;
import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.KeyOperation;
import io.netty.channel.IoEventLoop;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.ScheduledFuture;

import java.nio.channels.ClosedChannelException;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerFieldUpdater;

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
 */
public final class AsyncOffloadConnection implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(AsyncOffloadConnection.class.getName());

    private static final AtomicIntegerFieldUpdater<AsyncOffloadConnection> CALLBACK_SCHEDULED =
            AtomicIntegerFieldUpdater.newUpdater(AsyncOffloadConnection.class, "callbackScheduled");

    /** The ctx callback: hands the resume to the loop and returns (deduplicated while a resume is queued). */
    private static final java.util.concurrent.atomic.AtomicLong IDS = new java.util.concurrent.atomic.AtomicLong();

    private static final AsyncCallback CALLBACK = arg -> ((AsyncOffloadConnection) arg).onCallback();

    private final IoEventLoop loop;
    private final LoopState loopState;
    private final WaitFdRegistry registry;
    private final AsyncEngine engine;
    private final OffloadConfig config;
    private final OffloadConfig.Notify notify;
    private final AsyncWaitCtx ctx;
    private final EngineSession session;
    private final AsyncEngine fallback;
    private EngineSession fallbackSession;
    private final AsyncJobPool pool;
    private final Runnable callbackTask = this::onCallbackTask;
    /** Fd path: the job's resume listener, run on the completing thread; queues this connection for the wake-up. */
    private final Runnable markReady = this::markReady;
    private final long id = IDS.incrementAndGet();
    private final OffloadMetrics.Recorder recorder;
    private OffloadMetrics.Recorder fallbackRecorder;
    /** When the operation in flight first paused ({@link System#nanoTime()}), or 0. */
    private long pausedAtNanos;

    // The operation in flight (all null when idle).
    private KeyOperation op;
    private Promise<byte[]> promise;
    private AsyncJob<byte[]> job;
    private Runnable slotWaiter;
    private ScheduledFuture<?> timeoutFuture;
    private ScheduledFuture<?> retryFuture;
    private int eagainRetries;
    /** The session that runs the current job (the primary's or the fallback's). */
    private EngineSession jobSession;
    private boolean onFallback;
    private Throwable primaryFailure;

    // The fds this connection waits on in the loop's registry.
    private int[] fds = new int[2];
    private int fdCount;

    private boolean closed;
    private boolean ctxClosed;
    /** Released registrations not yet removed from the loop, plus one while close() runs. */
    private int pendingUnregisters;

    private volatile int callbackScheduled;

    // Counters for tests and metrics (loop thread).
    private int resumes;
    private int spuriousWakeups;

    private AsyncOffloadConnection(IoEventLoop loop, LoopState loopState, AsyncEngine engine, OffloadConfig config,
                                   OffloadConfig.Notify notify) {
        this.loop = loop;
        this.loopState = loopState;
        this.registry = loopState.registry;
        this.engine = engine;
        this.config = config;
        this.notify = notify;
        this.fallback = config.fallbackEngine();
        this.pool = loopState.pool(config.maxJobsPerLoop());
        this.recorder = loopState.recorder(config.metrics(), engine);
        AsyncWaitCtx c = new AsyncWaitCtx();
        boolean success = false;
        try {
            if (notify == OffloadConfig.Notify.CALLBACK) {
                c.setCallback(CALLBACK, this);
            }
            this.session = Objects.requireNonNull(engine.newSession(c, loop), "engine.newSession returned null");
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
        if (closed) {
            p.setFailure(new ClosedChannelException());
            return p;
        }
        if (promise != null) {
            p.setFailure(new IllegalStateException("submit: an operation is in flight on this connection; submit the "
                    + "next one after its future completes"));
            return p;
        }
        long timeoutNanos = config.operationTimeout().toNanos();
        if (timeoutNanos > 0) {
            try {
                timeoutFuture = loop.schedule(() -> onTimeout(p), timeoutNanos, TimeUnit.NANOSECONDS);
            } catch (RejectedExecutionException e) {
                p.setFailure(new ClosedChannelException()); // the loop is shutting down
                return p;
            }
        }
        op = operation;
        promise = p;
        if (fallback != null && loopState.health(engine).skipPrimary(config, System.nanoTime())) {
            loopState.primarySkips++;
            runOnFallback(null);
        } else {
            runOn(session, false);
        }
        return p;
    }

    /** Starts the operation in flight as a new job on {@code s}. */
    private void runOn(EngineSession s, boolean viaFallback) {
        KeyOperation operation = op;
        jobSession = s;
        onFallback = viaFallback;
        eagainRetries = 0;
        pausedAtNanos = 0;
        job = new AsyncJob<>(pool, ctx, j -> s.submit(j, operation));
        if (notify == OffloadConfig.Notify.FD) {
            job.setResumeListener(markReady);
        }
        startJob();
    }

    /** Runs the operation in flight on the fallback engine ({@code cause}: why the primary was left, or null). */
    private void runOnFallback(Throwable cause) {
        primaryFailure = cause;
        EngineSession fs = fallbackSession;
        if (fs == null) {
            try {
                fs = Objects.requireNonNull(fallback.newSession(ctx, loop), "fallback newSession returned null");
            } catch (RuntimeException e) {
                AsyncEngineException failure = new AsyncEngineException("could not open a session of fallback "
                        + "engine '" + fallback.name() + "': " + e, e);
                if (cause != null) {
                    failure.addSuppressed(cause);
                }
                fail(failure);
                return;
            }
            fallbackSession = fs;
        }
        loopState.fallbackOperations++;
        recorder.fallback();
        if (fallbackRecorder == null) {
            fallbackRecorder = loopState.recorder(config.metrics(), fallback);
        }
        runOn(fs, true);
    }

    /**
     * The current engine could not do the operation (its job has ended or been abandoned): run it on the fallback when
     * the primary failed and there is one, else fail it.
     */
    private void onEngineFailure(Throwable cause) {
        if (!onFallback) {
            loopState.primaryFailures++;
            loopState.health(engine).onFailure(config, System.nanoTime());
        }
        if (fallback == null || onFallback || closed || promise == null) {
            if (onFallback && primaryFailure != null) {
                cause.addSuppressed(primaryFailure);
            }
            fail(cause);
            return;
        }
        job = null;
        runOnFallback(cause);
    }

    private AsyncEngine currentEngine() {
        return onFallback ? fallback : engine;
    }

    private OffloadMetrics.Recorder currentRecorder() {
        return onFallback && fallbackRecorder != null ? fallbackRecorder : recorder;
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
        if (closed) {
            return;
        }
        closed = true;
        loopState.remove(this);
        if (promise != null) {
            // Only then: an exception's stack trace cost ~8 us per connection close under an h2load storm (issue 12).
            failInFlight(new ClosedChannelException());
        }
        closeSessions();
        pendingUnregisters++; // held while releasing, so a synchronous unregistered() cannot close the ctx early
        for (int i = 0; i < fdCount; i++) {
            pendingUnregisters++;
            if (!registry.release(this, fds[i])) {
                pendingUnregisters--;
            }
        }
        fdCount = 0;
        if (--pendingUnregisters == 0) {
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
        return closed;
    }

    /** True once the ctx has been closed (after close, when every released registration has left the loop). */
    boolean isCtxClosed() {
        return ctxClosed;
    }

    /** The number of times a job of this connection was resumed with a completion pending. Loop thread. */
    int resumes() {
        return resumes;
    }

    /** Fd wake-ups and callbacks that found no completion pending. Loop thread. */
    int spuriousWakeups() {
        return spuriousWakeups;
    }

    /** The fds this connection waits on, sorted. Loop thread; for tests. */
    int[] waitFds() {
        int[] copy = Arrays.copyOf(fds, fdCount);
        Arrays.sort(copy);
        return copy;
    }

    // ---- job flow (loop thread) ----

    private void startJob() {
        AsyncStartResult r;
        try {
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
        onResult(r);
    }

    private void onResult(AsyncStartResult r) {
        AsyncJob<byte[]> j = job;
        if (r != AsyncStartResult.NO_JOBS && r != AsyncStartResult.PAUSE) {
            // The operation may have changed the ctx's fds before it finished (a retry that completed at once): keep
            // the registry in step, so that nothing stale stays registered. A failure here is for the next pause.
            syncWaitFds(false);
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
        AsyncStatus status = ctx.getStatus();
        if (status == AsyncStatus.EAGAIN) {
            scheduleRetry(j);
            return;
        }
        if (pausedAtNanos == 0) {
            pausedAtNanos = System.nanoTime();
            currentRecorder().jobPaused();
            OffloadJfrEvents.JobPause event = new OffloadJfrEvents.JobPause();
            if (event.isEnabled()) {
                event.connectionId = id;
                event.engine = currentEngine().name();
                event.operation = String.valueOf(op);
                event.commit();
            }
        }
        if (status != AsyncStatus.OK && (fdCount == 0 || !registry.supportsFds())) {
            if (j.isCompletionPending()) {
                resumeIfCompleted();
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
        if (!registry.supportsFds() || (ctx.numAddedFds() == 0 && ctx.numDeletedFds() == 0)) {
            return true;
        }
        ChangedFds changed = ctx.getChangedFds();
        for (int fd : changed.deleted()) {
            releaseFd(fd);
        }
        for (int fd : changed.added()) {
            if (indexOfFd(fd) >= 0) {
                continue;
            }
            Throwable failure = registry.acquire(this, fd);
            if (failure != null) {
                if (!failOnError) {
                    return false;
                }
                abandonAndFail(new AsyncEngineException("could not wait on fd " + fd + " of engine '"
                        + currentEngine().name()
                        + "' on " + loop + ": " + failure, failure));
                return false;
            }
            if (fdCount == fds.length) {
                fds = Arrays.copyOf(fds, fdCount * 2);
            }
            fds[fdCount++] = fd;
        }
        return true;
    }

    private void releaseFd(int fd) {
        int i = indexOfFd(fd);
        if (i < 0) {
            return;
        }
        fds[i] = fds[--fdCount];
        pendingUnregisters++;
        if (!registry.release(this, fd)) {
            pendingUnregisters--;
        }
    }

    private int indexOfFd(int fd) {
        for (int i = 0; i < fdCount; i++) {
            if (fds[i] == fd) {
                return i;
            }
        }
        return -1;
    }

    private void queueForSlot(AsyncJob<byte[]> j) {
        Runnable waiter = () -> onSlot(j);
        slotWaiter = waiter;
        pool.awaitSlot(waiter);
    }

    private void onSlot(AsyncJob<byte[]> j) {
        if (closed || job != j || j.state() != AsyncJob.State.NEW) {
            return; // stale waiter: that operation ended meanwhile
        }
        slotWaiter = null;
        startJob();
    }

    private void scheduleRetry(AsyncJob<byte[]> j) {
        if (eagainRetries >= config.eagainMaxRetries()) {
            abandonJob();
            currentRecorder().jobFailed(OffloadMetrics.FailureCause.EAGAIN_EXHAUSTED);
            onEngineFailure(new AsyncEngineException("engine '" + currentEngine().name() + "' answered EAGAIN "
                    + "(cannot take the operation now) " + (eagainRetries + 1) + " times; gave up after "
                    + eagainRetries + " retries (raise eagainMaxRetries or the engine's capacity)"));
            return;
        }
        long delay = config.eagainInitialBackoff().toNanos();
        long max = config.eagainMaxBackoff().toNanos();
        for (int i = 0; i < eagainRetries && delay < max; i++) {
            delay = Math.min(delay * 2, max);
        }
        eagainRetries++;
        currentRecorder().eagainRetry();
        retryFuture = loop.schedule(() -> onRetry(j), delay, TimeUnit.NANOSECONDS);
    }

    private void onRetry(AsyncJob<byte[]> j) {
        if (closed || job != j) {
            return;
        }
        retryFuture = null;
        AsyncJob.State s = j.state();
        if (s == AsyncJob.State.PAUSED || s == AsyncJob.State.RESUMING) {
            resumes++;
            onResult(j.resume());
        }
    }

    private void onTimeout(Promise<byte[]> p) {
        if (promise != p) {
            return;
        }
        timeoutFuture = null;
        loopState.operationTimeouts++;
        currentRecorder().jobFailed(OffloadMetrics.FailureCause.DEADLINE);
        boolean engineHadIt = job != null && job.state() != AsyncJob.State.NEW;
        if (!onFallback && engineHadIt) {
            loopState.health(engine).onFailure(config, System.nanoTime()); // not the engine's fault while queued
        }
        String what = engineHadIt ? "engine '" + currentEngine().name() + "' did not complete " + op
                : op + " waited for a free job (maxJobsPerLoop " + config.maxJobsPerLoop() + ") and did not reach "
                + "engine '" + currentEngine().name() + "'";
        abandonAndFail(new AsyncOffloadTimeoutException(what + " within the operation timeout of "
                + config.operationTimeout().toMillis() + " ms; the job was abandoned (raise operationTimeout or "
                + "check the engine)"));
    }

    // ---- resume paths (loop thread) ----

    /** Resumes the job when its completion has arrived; otherwise a spurious wake-up, nothing happens. Loop thread. */
    void resumeIfCompleted() {
        if (!resumeIfReady()) {
            spuriousWakeups++;
            recorder.spuriousWakeup();
        }
    }

    private void recordResume() {
        if (pausedAtNanos == 0) {
            return;
        }
        long paused = System.nanoTime() - pausedAtNanos;
        currentRecorder().jobResumed(paused);
        OffloadJfrEvents.JobResume event = new OffloadJfrEvents.JobResume();
        if (event.isEnabled()) {
            event.connectionId = id;
            event.engine = currentEngine().name();
            event.pausedNanos = paused;
            event.outcome = job != null && job.isCompletionPending() ? "completed" : "retry";
            event.commit();
        }
    }

    private void markReady() {
        registry.markReady(this);
    }

    /**
     * Resumes the job if its completion is pending. Loop thread. The fd path calls it for connections queued by their
     * job's resume listener: false there means the operation ended meanwhile (closed, timed out), not a spurious
     * wake-up.
     *
     * @return true when the job was resumed
     */
    boolean resumeIfReady() {
        AsyncJob<byte[]> j = job;
        if (closed || j == null || !j.isCompletionPending()) {
            return false;
        }
        resumes++;
        recordResume();
        onResult(j.resume());
        return true;
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
        if (--pendingUnregisters == 0 && closed) {
            closeCtx();
        }
    }

    /** Any thread: the ctx callback. */
    private int onCallback() {
        if (!CALLBACK_SCHEDULED.compareAndSet(this, 0, 1)) {
            return 1; // a resume is queued already; it will see this completion
        }
        try {
            loop.execute(callbackTask);
            return 1;
        } catch (RejectedExecutionException e) {
            callbackScheduled = 0;
            return 0; // the loop is shutting down; its shutdown closes this connection
        }
    }

    private void onCallbackTask() {
        callbackScheduled = 0;
        resumeIfCompleted();
    }

    // ---- endings (loop thread) ----

    private void succeed(byte[] result) {
        if (!onFallback) {
            loopState.health(engine).onSuccess();
        }
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
                    loopState.operationsCancelled++;
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
        if (timeoutFuture != null) {
            timeoutFuture.cancel(false);
            timeoutFuture = null;
        }
        if (retryFuture != null) {
            retryFuture.cancel(false);
            retryFuture = null;
        }
        promise = null;
        op = null;
        job = null;
        pausedAtNanos = 0;
        slotWaiter = null;
        eagainRetries = 0;
        jobSession = null;
        onFallback = false;
        primaryFailure = null;
        return p;
    }

    private Throwable engineFailure(Throwable cause) {
        if (cause == null) {
            cause = new AsyncEngineException("no cause recorded");
        }
        return new AsyncEngineException("engine '" + currentEngine().name() + "' failed " + op + ": " + cause, cause);
    }

    private void closeSessions() {
        try {
            session.close();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.DEBUG, "engine session close failed", e);
        }
        if (fallbackSession != null) {
            try {
                fallbackSession.close();
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.DEBUG, "fallback engine session close failed", e);
            }
        }
    }

    private void closeCtx() {
        if (ctxClosed) {
            return;
        }
        ctxClosed = true;
        loopState.removeClosing(this);
        try {
            ctx.close();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.DEBUG, "wait ctx cleanup failed", e);
        }
    }

    /** After the loop has terminated (any thread, the loop's thread is gone): release everything left. */
    void closeAfterTermination() {
        if (!closed) {
            closed = true;
            if (job != null) {
                job.abandon();
            }
            Promise<byte[]> p = clearOperation();
            if (p != null) {
                p.tryFailure(new ClosedChannelException());
            }
            closeSessions();
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
                + (job != null ? ", " + job : "") + (closed ? ", closed" : "") + ']';
    }
}
