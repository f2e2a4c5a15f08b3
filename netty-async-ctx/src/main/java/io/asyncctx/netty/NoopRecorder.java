package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.netty.channel.IoEventLoop;

/**
 * Records nothing: the default {@link OffloadMetrics}.
 *
 * <p>Threading: stateless, safe on any thread.
 */
final class NoopRecorder implements OffloadMetrics.Recorder {

    static final NoopRecorder INSTANCE = new NoopRecorder();
    static final OffloadMetrics METRICS = new OffloadMetrics() {
        @Override
        public Recorder recorder(AsyncEngine engine, IoEventLoop loop) {
            return INSTANCE;
        }

        @Override
        public String toString() {
            return "OffloadMetrics.none()";
        }
    };

    private NoopRecorder() {
    }

    @Override
    public void jobStarted() {
    }

    @Override
    public void jobPaused() {
    }

    @Override
    public void jobResumed(long pausedNanos) {
    }

    @Override
    public void jobFinished(long serviceNanos) {
    }

    @Override
    public void jobFailed(OffloadMetrics.FailureCause cause) {
    }

    @Override
    public void noJobsWait() {
    }

    @Override
    public void eagainRetry() {
    }

    @Override
    public void fallback() {
    }

    @Override
    public void spuriousWakeup() {
    }

    @Override
    public void inlineOperation() {
    }
}
