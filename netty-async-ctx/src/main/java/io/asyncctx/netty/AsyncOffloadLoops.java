package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.netty.channel.IoEventLoop;

import java.util.Objects;

/**
 * Threading: the counters: any thread may call; the values are exact when read on the loop's thread and
 * recent otherwise. A loop on which no connection was ever opened, or that has terminated, reports zeros.
 * {@link #recorder}: the loop's thread only.
 *
 * <p>Per-event-loop counters of the offload, for tests and metrics, and the loop's cached metrics recorders.
 */
public final class AsyncOffloadLoops {

    private AsyncOffloadLoops() {
    }

    /** Wait-fd registrations alive on {@code loop} (registered and not yet unregistered). */
    public static int registeredWaitFds(IoEventLoop loop) {
        LoopState s = LoopState.peek(Objects.requireNonNull(loop, "loop"));
        return s == null ? 0 : s.registry.registeredCount();
    }

    /** Jobs started and not yet finished or abandoned on {@code loop}. */
    public static int jobsInFlight(IoEventLoop loop) {
        LoopState s = LoopState.peek(Objects.requireNonNull(loop, "loop"));
        return s == null ? 0 : s.jobsInFlight();
    }

    /** Operations waiting for a job slot (NO_JOBS) on {@code loop}. */
    public static int jobsWaiting(IoEventLoop loop) {
        LoopState s = LoopState.peek(Objects.requireNonNull(loop, "loop"));
        return s == null ? 0 : s.jobsWaiting();
    }

    /** Connections opened on {@code loop} and not yet closed. */
    public static int openConnections(IoEventLoop loop) {
        LoopState s = LoopState.peek(Objects.requireNonNull(loop, "loop"));
        return s == null ? 0 : s.openConnections();
    }

    /**
     * Operations run on a fallback engine on {@code loop}: after the primary failed (ERR, EAGAIN exhausted) or was
     * skipped as unhealthy ({@link OffloadConfig#fallbackEngine()}).
     */
    public static long fallbackOperations(IoEventLoop loop) {
        LoopState s = LoopState.peek(Objects.requireNonNull(loop, "loop"));
        return s == null ? 0 : s.fallbackOperations;
    }

    /**
     * Operations that a primary engine ended in ERR or with EAGAIN exhausted on {@code loop} (timeouts not counted).
     */
    public static long primaryFailures(IoEventLoop loop) {
        LoopState s = LoopState.peek(Objects.requireNonNull(loop, "loop"));
        return s == null ? 0 : s.primaryFailures;
    }

    /** Operations sent straight to the fallback because the primary was unhealthy on {@code loop}. */
    public static long primarySkips(IoEventLoop loop) {
        LoopState s = LoopState.peek(Objects.requireNonNull(loop, "loop"));
        return s == null ? 0 : s.primarySkips;
    }

    /** Operations ended by {@link OffloadConfig#operationTimeout()} on {@code loop}. */
    public static long operationTimeouts(IoEventLoop loop) {
        LoopState s = LoopState.peek(Objects.requireNonNull(loop, "loop"));
        return s == null ? 0 : s.operationTimeouts;
    }

    /**
     * Started jobs abandoned on {@code loop} with the engine told to cancel them: the connection closed, the deadline
     * passed, or EAGAIN retries ran out.
     */
    public static long jobsCancelled(IoEventLoop loop) {
        LoopState s = LoopState.peek(Objects.requireNonNull(loop, "loop"));
        return s == null ? 0 : s.operationsCancelled;
    }

    /**
     * The metrics recorder of {@code engine}'s operations on {@code loop} under {@code metrics}: the same instance the
     * loop's jobs record into, made at the first call for that pair and cached by the loop, so a caller on the hot path
     * allocates nothing. For integrations that perform operations on the loop outside a job, such as the QUIC context's
     * inline signatures ({@code io.asyncctx.quic}), which record {@link OffloadMetrics.Recorder#inlineOperation()}
     * here. {@link OffloadMetrics#none()} gives a recorder that does nothing, without touching the loop's state.
     *
     * @throws IllegalStateException when not called on {@code loop}'s thread
     */
    public static OffloadMetrics.Recorder recorder(IoEventLoop loop, OffloadMetrics metrics, AsyncEngine engine) {
        Objects.requireNonNull(loop, "loop");
        Objects.requireNonNull(metrics, "metrics");
        Objects.requireNonNull(engine, "engine");
        if (metrics == OffloadMetrics.none()) {
            return NoopRecorder.INSTANCE;
        }
        if (!loop.inEventLoop()) {
            throw new IllegalStateException("recorder: call on the event loop's thread (loop.execute(...) or from a "
                    + "handler of a channel of that loop)");
        }
        return LoopState.of(loop).recorder(metrics, engine);
    }
}
