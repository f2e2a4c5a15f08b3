package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;

import java.time.Duration;
import java.util.Objects;

/**
 * Threading: immutable once built; safe on any thread. The {@link Builder} is not thread-safe.
 *
 * <p>Immutable settings of the offload: how a paused job is notified, how many jobs a loop runs at once, how long an
 * operation may take, how an engine's EAGAIN is retried, and which engine takes over when the primary one fails.
 *
 * <p><b>Fallback.</b> With a {@linkplain Builder#fallbackEngine fallback engine}, an operation that the primary engine
 * ends in ERR (it failed the job, or set status ERR) or that kept answering EAGAIN past {@link #eagainMaxRetries()}
 * is run again, as a new job of the same connection, on the fallback engine (its own session on the same ctx; its wait
 * fds go through the same loop registry and are closed with the ctx). The operation's deadline is not restarted: one
 * {@link #operationTimeout()} covers the primary attempt and the fallback, and a deadline that passes ends the
 * operation without fallback (the peer has waited long enough; a hung primary should be cut by a shorter timeout or
 * marked unhealthy). A fallback that fails too ends the operation; the primary's failure is attached as suppressed.
 *
 * <p><b>Unhealthy primary.</b> With {@link #unhealthyAfterFailures()} {@code = n > 0}, after {@code n} consecutive
 * primary failures on one event loop (ERR, EAGAIN exhausted, or a deadline), new operations on that loop skip the
 * primary and go straight to the fallback for {@link #unhealthyCooldown()}; then one operation probes the primary
 * again (the others keep using the fallback for one more cooldown): a success makes it healthy, a failure starts a new
 * cooldown. Counted per loop by {@link AsyncOffloadLoops}.
 */
public final class OffloadConfig {

    /** Threading: an enum, any thread. How a paused job learns that its engine has completed. */
    public enum Notify {
        /** {@link #FD} on epoll and io_uring loops, {@link #CALLBACK} on NIO (and any other) loops. */
        AUTO,
        /** The engine makes a wait fd readable; the loop polls it (epoll and io_uring loops only). */
        FD,
        /** The engine calls the ctx's callback, which hands the resume to the loop (any loop). */
        CALLBACK
    }

    private static final OffloadConfig DEFAULTS = new Builder().build();

    private final Notify notify;
    private final int maxJobsPerLoop;
    private final Duration operationTimeout;
    private final Duration eagainInitialBackoff;
    private final Duration eagainMaxBackoff;
    private final int eagainMaxRetries;
    private final AsyncEngine fallbackEngine;
    private final int unhealthyAfterFailures;
    private final Duration unhealthyCooldown;
    private final OffloadMetrics metrics;
    private final int handshakeStepsPerLoopTurn;

    private OffloadConfig(Builder b) {
        this.handshakeStepsPerLoopTurn = b.handshakeStepsPerLoopTurn;
        this.notify = b.notify;
        this.maxJobsPerLoop = b.maxJobsPerLoop;
        this.operationTimeout = b.operationTimeout;
        this.eagainInitialBackoff = b.eagainInitialBackoff;
        this.eagainMaxBackoff = b.eagainMaxBackoff;
        this.eagainMaxRetries = b.eagainMaxRetries;
        this.fallbackEngine = b.fallbackEngine;
        this.unhealthyAfterFailures = b.unhealthyAfterFailures;
        this.unhealthyCooldown = b.unhealthyCooldown;
        this.metrics = b.metrics;
    }

    /** Where the offload path reports what it does; {@link OffloadMetrics#none()} by default. */
    public OffloadMetrics metrics() {
        return metrics;
    }

    /** A new builder with the defaults. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The defaults: AUTO, 1024 jobs per loop, 10 s timeout, EAGAIN backoff 1 ms doubling to 64 ms, 8 retries, no
     * fallback engine.
     */
    public static OffloadConfig defaults() {
        return DEFAULTS;
    }

    /**
     * How paused jobs are notified. (Named {@code notifyMode}, not {@code notify}: {@link Object#notify()} is final.)
     */
    public Notify notifyMode() {
        return notify;
    }

    /** The most jobs in flight at once on one event loop; more wait for a slot (NO_JOBS). */
    public int maxJobsPerLoop() {
        return maxJobsPerLoop;
    }

    /** How long one operation may take from submit to completion; {@link Duration#ZERO} means no limit. */
    public Duration operationTimeout() {
        return operationTimeout;
    }

    /** The delay before the first retry after the engine answered EAGAIN. */
    public Duration eagainInitialBackoff() {
        return eagainInitialBackoff;
    }

    /** The longest delay between EAGAIN retries (the delay doubles up to this). */
    public Duration eagainMaxBackoff() {
        return eagainMaxBackoff;
    }

    /** How many times an operation is retried after EAGAIN before it fails. */
    public int eagainMaxRetries() {
        return eagainMaxRetries;
    }

    /** The engine that runs an operation the primary engine failed, or null when there is none. */
    public AsyncEngine fallbackEngine() {
        return fallbackEngine;
    }

    /** Consecutive primary failures on a loop after which the primary is skipped for a while; 0 never skips it. */
    public int unhealthyAfterFailures() {
        return unhealthyAfterFailures;
    }

    /** How long an unhealthy primary is skipped before one operation probes it again. */
    public Duration unhealthyCooldown() {
        return unhealthyCooldown;
    }

    /**
     * The most handshake steps one event loop runs per loop iteration, 0 (the default) for no bound. A step is an
     * inbound read of a channel whose handshake is not done (BoringSSL processes the ClientHello, the client's
     * Finished) or the resume of a completed key operation signalled through a wait fd ({@link Notify#FD}; callback
     * resumes are not bounded). A read of a channel whose key operation is still waiting is not a step (SslHandler only
     * buffers it, and the read hold bounds it). A read over the budget is kept by the channel's
     * {@link AsyncOffloadHandler} (its buffers owned there, released if the channel closes; later reads and user events
     * of that channel are kept behind it, in order), a resume over the budget is kept by the loop; both run in a later
     * iteration, after that iteration's I/O pass, so that established connections' reads are served between the steps
     * of a burst of handshakes. Steps run oldest first. See {@link HandshakeTurns} for how a loop iteration is
     * delimited.
     *
     * <p>Where it applies: only on loops that are a Netty {@code SingleThreadEventLoop} (every loop of a {@code
     * MultiThreadIoEventLoopGroup}), whose end-of-iteration hook delimits the turns; on any other loop nothing is
     * bounded. QUIC ({@code io.asyncctx.quic}, HTTP/3) bounds the wait-fd resumes of its handshakes only: its datagrams
     * are read by the QUIC codec on the shared UDP channel, not through an {@link AsyncOffloadHandler}, so its reads
     * are never kept.
     */
    public int handshakeStepsPerLoopTurn() {
        return handshakeStepsPerLoopTurn;
    }

    /** A builder that starts from these settings. */
    public Builder toBuilder() {
        Builder b = new Builder().notify(notify).maxJobsPerLoop(maxJobsPerLoop).operationTimeout(operationTimeout)
                .eagainInitialBackoff(eagainInitialBackoff).eagainMaxBackoff(eagainMaxBackoff)
                .eagainMaxRetries(eagainMaxRetries).unhealthyAfterFailures(unhealthyAfterFailures)
                .unhealthyCooldown(unhealthyCooldown).handshakeStepsPerLoopTurn(handshakeStepsPerLoopTurn);
        b.fallbackEngine = fallbackEngine;
        b.metrics = metrics;
        return b;
    }

    @Override
    public String toString() {
        return "OffloadConfig[notify=" + notify + ", maxJobsPerLoop=" + maxJobsPerLoop + ", operationTimeout="
                + operationTimeout + ", eagainBackoff=" + eagainInitialBackoff + ".." + eagainMaxBackoff
                + ", eagainMaxRetries=" + eagainMaxRetries
                + (fallbackEngine == null ? "" : ", fallback=" + fallbackEngine.name() + ", unhealthyAfterFailures="
                + unhealthyAfterFailures + ", unhealthyCooldown=" + unhealthyCooldown)
                + (handshakeStepsPerLoopTurn == 0 ? "" : ", handshakeStepsPerLoopTurn=" + handshakeStepsPerLoopTurn)
                + ']';
    }

    /** Threading: not thread-safe; use on one thread. Builds an {@link OffloadConfig}. */
    public static final class Builder {
        private Notify notify = Notify.AUTO;
        private int maxJobsPerLoop = 1024;
        private Duration operationTimeout = Duration.ofSeconds(10);
        private Duration eagainInitialBackoff = Duration.ofMillis(1);
        private Duration eagainMaxBackoff = Duration.ofMillis(64);
        private int eagainMaxRetries = 8;
        private AsyncEngine fallbackEngine;
        private OffloadMetrics metrics = OffloadMetrics.none();
        private int unhealthyAfterFailures;
        private Duration unhealthyCooldown = Duration.ofSeconds(1);
        private int handshakeStepsPerLoopTurn;

        private Builder() {
        }

        /**
         * Bounds the handshake steps one event loop runs per loop iteration (see
         * {@link OffloadConfig#handshakeStepsPerLoopTurn()}); 0, the default, for no bound. Small values (1 to 4) keep
         * established connections' round trips short during bursts of new handshakes; a step costs one
         * non-blocking I/O poll more when it waits.
         */
        public Builder handshakeStepsPerLoopTurn(int steps) {
            if (steps < 0) {
                throw new IllegalArgumentException("handshakeStepsPerLoopTurn: " + steps
                        + " (expected 0 for no bound, or a positive number of steps per loop iteration)");
            }
            this.handshakeStepsPerLoopTurn = steps;
            return this;
        }

        /** How paused jobs are notified; default {@link Notify#AUTO}. */
        public Builder notify(Notify notify) {
            this.notify = Objects.requireNonNull(notify, "notify");
            return this;
        }

        /** The most jobs in flight at once per event loop, at least 1; default 1024. */
        public Builder maxJobsPerLoop(int maxJobsPerLoop) {
            if (maxJobsPerLoop < 1) {
                throw new IllegalArgumentException("maxJobsPerLoop: " + maxJobsPerLoop + " (expected at least 1)");
            }
            this.maxJobsPerLoop = maxJobsPerLoop;
            return this;
        }

        /** The limit for one operation, not negative; {@link Duration#ZERO} for none; default 10 s. */
        public Builder operationTimeout(Duration operationTimeout) {
            Objects.requireNonNull(operationTimeout, "operationTimeout");
            if (operationTimeout.isNegative()) {
                throw new IllegalArgumentException("operationTimeout: " + operationTimeout
                        + " (expected zero for no limit, or a positive duration)");
            }
            this.operationTimeout = operationTimeout;
            return this;
        }

        /** The first EAGAIN retry delay, positive; default 1 ms. */
        public Builder eagainInitialBackoff(Duration eagainInitialBackoff) {
            this.eagainInitialBackoff = positive(eagainInitialBackoff, "eagainInitialBackoff");
            return this;
        }

        /** The longest EAGAIN retry delay, positive and not below the initial one; default 64 ms. */
        public Builder eagainMaxBackoff(Duration eagainMaxBackoff) {
            this.eagainMaxBackoff = positive(eagainMaxBackoff, "eagainMaxBackoff");
            return this;
        }

        /** How many EAGAIN retries before the operation fails, not negative; default 8. */
        public Builder eagainMaxRetries(int eagainMaxRetries) {
            if (eagainMaxRetries < 0) {
                throw new IllegalArgumentException("eagainMaxRetries: " + eagainMaxRetries
                        + " (expected 0 or more; 0 fails at the first EAGAIN)");
            }
            this.eagainMaxRetries = eagainMaxRetries;
            return this;
        }

        /**
         * Where the offload path reports what it does (default {@link OffloadMetrics#none()}); for Micrometer,
         * {@code new MicrometerOffloadMetrics(registry)}.
         */
        public Builder metrics(OffloadMetrics metrics) {
            this.metrics = Objects.requireNonNull(metrics, "metrics");
            return this;
        }

        /**
         * The engine that runs an operation again when the primary engine ends it in ERR or keeps answering EAGAIN
         * (see the class javadoc). It must hold the same key as the primary: the handshake's certificate is the
         * primary's. Not closed by the offload; the caller closes it after the servers have stopped.
         */
        public Builder fallbackEngine(AsyncEngine fallbackEngine) {
            this.fallbackEngine = Objects.requireNonNull(fallbackEngine, "fallbackEngine");
            return this;
        }

        /**
         * After this many consecutive primary failures on one event loop, skip the primary (go straight to the
         * fallback) for {@link #unhealthyCooldown}; 0 (the default) never skips it. Needs a fallback engine.
         */
        public Builder unhealthyAfterFailures(int failures) {
            if (failures < 0) {
                throw new IllegalArgumentException("unhealthyAfterFailures: " + failures
                        + " (expected 0 to never skip the primary, or a positive count)");
            }
            this.unhealthyAfterFailures = failures;
            return this;
        }

        /** How long an unhealthy primary is skipped, positive; default 1 s. */
        public Builder unhealthyCooldown(Duration cooldown) {
            this.unhealthyCooldown = positive(cooldown, "unhealthyCooldown");
            return this;
        }

        /**
         * Builds the settings.
         *
         * @throws IllegalArgumentException when eagainMaxBackoff is shorter than eagainInitialBackoff, or
         *     unhealthyAfterFailures is set without a fallback engine
         */
        public OffloadConfig build() {
            if (eagainMaxBackoff.compareTo(eagainInitialBackoff) < 0) {
                throw new IllegalArgumentException("eagainMaxBackoff " + eagainMaxBackoff
                        + " is shorter than eagainInitialBackoff " + eagainInitialBackoff
                        + "; raise eagainMaxBackoff or lower eagainInitialBackoff");
            }
            if (unhealthyAfterFailures > 0 && fallbackEngine == null) {
                throw new IllegalArgumentException("unhealthyAfterFailures " + unhealthyAfterFailures
                        + " needs a fallbackEngine to send operations to while the primary is skipped; set "
                        + "fallbackEngine(...) or leave unhealthyAfterFailures at 0");
            }
            return new OffloadConfig(this);
        }

        private static Duration positive(Duration d, String name) {
            Objects.requireNonNull(d, name);
            if (d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException(name + ": " + d + " (expected a positive duration)");
            }
            return d;
        }
    }
}
