package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.netty.channel.IoEventLoop;

/**
 * Threading: {@link #recorder} is called on an event loop, once per engine and loop (the result is cached by the
 * library), possibly on several loops at once: implementations are thread-safe. A {@link Recorder} is used on that
 * one loop's thread only, on the resume hot path: its methods must be cheap, must not block and must not throw.
 *
 * <p>Where the offload path reports what it does: jobs started, paused, resumed, finished and failed (by cause), waits
 * for a free job, EAGAIN retries, fallbacks, spurious wake-ups and inline operations, with the pause-to-resume and
 * engine service times. {@link #none()} records nothing; {@link MicrometerOffloadMetrics} records into a Micrometer
 * registry (Micrometer is an optional dependency: without it on the class path, use {@link #none()}, the default).
 * Set it with {@link OffloadConfig.Builder#metrics(OffloadMetrics)}.
 */
public interface OffloadMetrics {

    /** The recorder for {@code engine}'s operations on {@code loop}. Called on {@code loop}. */
    Recorder recorder(AsyncEngine engine, IoEventLoop loop);

    /**
     * The same metrics for handshakes of another transport protocol, so that an operator can tell them apart: the
     * library asks for {@code "quic"} for QUIC handshakes ({@code io.asyncctx.quic}); TCP handshakes use this instance
     * itself. Implementations that tag (as {@link MicrometerOffloadMetrics} does, with a {@code protocol} tag) return
     * the same instance for the same protocol on every call. The default ignores the protocol. Any thread.
     */
    default OffloadMetrics forProtocol(String protocol) {
        return this;
    }

    /** Records nothing (the default). */
    static OffloadMetrics none() {
        return NoopRecorder.METRICS;
    }

    /** Threading: an enum, any thread. Why an operation failed. */
    enum FailureCause {
        /** The engine reported ERR or failed the operation. */
        ERR,
        /** The operation did not complete within the operation timeout. */
        DEADLINE,
        /** The connection closed while the operation was in flight. */
        CANCELLED,
        /** The engine kept answering EAGAIN until the retries ran out. */
        EAGAIN_EXHAUSTED
    }

    /**
     * Threading: called on that event loop only; cheap, non-blocking, never throws.
     *
     * <p>Counts and times the operations of one engine on one event loop.
     */
    interface Recorder {
        /** A job was started (it took a slot of the loop's job pool). */
        void jobStarted();

        /** A job paused waiting for its engine. */
        void jobPaused();

        /** A paused job was resumed with its completion; {@code pausedNanos} from its first pause to now. */
        void jobResumed(long pausedNanos);

        /** A job finished with a result; {@code serviceNanos} from its start to the engine's completion. */
        void jobFinished(long serviceNanos);

        /** An operation failed. */
        void jobFailed(FailureCause cause);

        /** A job found no free slot (NO_JOBS) and waits for one. */
        void noJobsWait();

        /** The engine answered EAGAIN and the operation will be retried. */
        void eagainRetry();

        /** The operation moved to the fallback engine. */
        void fallback();

        /** A wake-up (readable fd or callback) found no completion. */
        void spuriousWakeup();

        /** An operation ran inline on the loop under the inline policy. */
        void inlineOperation();
    }
}
