package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.KeyOperation;

/**
 * What one connection records about its operations: the metrics {@link OffloadMetrics.Recorder} of the engine that runs
 * the current attempt (the primary's, or the fallback's once used), the pause clock, the JFR pause and resume events,
 * and the loop's own counters ({@link AsyncOffloadLoops}). The connection records through this class only, so that
 * every counter has one writer.
 *
 * <p><b>Threading.</b> Loop thread only.
 */
final class OperationRecorder {

    private final LoopState loopState;
    private final OffloadMetrics metrics;
    private final long connectionId;
    private final OffloadMetrics.Recorder primary;
    private OffloadMetrics.Recorder fallback;
    /** When the current attempt first paused ({@link System#nanoTime()}), or 0. */
    private long pausedAtNanos;

    OperationRecorder(LoopState loopState, OffloadMetrics metrics, AsyncEngine engine, long connectionId) {
        this.loopState = loopState;
        this.metrics = metrics;
        this.connectionId = connectionId;
        this.primary = loopState.recorder(metrics, engine);
    }

    /** The recorder of the primary engine (spurious wake-ups and fallbacks are recorded there). */
    OffloadMetrics.Recorder primary() {
        return primary;
    }

    /** The recorder of the current attempt's engine. */
    OffloadMetrics.Recorder current(boolean onFallback) {
        return onFallback && fallback != null ? fallback : primary;
    }

    /** An operation moves to {@code fallbackEngine}. */
    void fallback(AsyncEngine fallbackEngine) {
        primary.fallback();
        if (fallback == null) {
            fallback = loopState.recorder(metrics, fallbackEngine);
        }
    }

    /** An operation skipped an unhealthy primary and went straight to the fallback. */
    void primarySkipped() {
        loopState.primarySkips++;
    }

    /** An operation runs (again) on the fallback engine. */
    void fallbackOperation() {
        loopState.fallbackOperations++;
    }

    /** The primary engine failed an operation. */
    void primaryFailed() {
        loopState.primaryFailures++;
    }

    /** An operation's deadline passed. */
    void operationTimedOut() {
        loopState.operationTimeouts++;
    }

    /** An operation the engine had taken was cancelled (closed, timed out, abandoned). */
    void operationCancelled() {
        loopState.operationsCancelled++;
    }

    /** A new attempt starts, or the operation ended: no pause yet. */
    void reset() {
        pausedAtNanos = 0;
    }

    /** The attempt paused; only its first pause counts (EAGAIN retries pause again). */
    void paused(boolean onFallback, AsyncEngine engine, KeyOperation op) {
        if (pausedAtNanos != 0) {
            return;
        }
        pausedAtNanos = System.nanoTime();
        current(onFallback).jobPaused();
        OffloadJfrEvents.JobPause event = new OffloadJfrEvents.JobPause();
        if (event.isEnabled()) {
            event.connectionId = connectionId;
            event.engine = engine.name();
            event.operation = String.valueOf(op);
            event.commit();
        }
    }

    /** The paused attempt is resumed ({@code completed}: with its completion, else for an EAGAIN retry). */
    void resumed(boolean onFallback, AsyncEngine engine, boolean completed) {
        if (pausedAtNanos == 0) {
            return;
        }
        long paused = System.nanoTime() - pausedAtNanos;
        current(onFallback).jobResumed(paused);
        OffloadJfrEvents.JobResume event = new OffloadJfrEvents.JobResume();
        if (event.isEnabled()) {
            event.connectionId = connectionId;
            event.engine = engine.name();
            event.pausedNanos = paused;
            event.outcome = completed ? "completed" : "retry";
            event.commit();
        }
    }
}
