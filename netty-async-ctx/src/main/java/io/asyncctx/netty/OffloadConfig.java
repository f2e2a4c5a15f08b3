package io.asyncctx.netty;

import java.time.Duration;
import java.util.Objects;

/**
 * Immutable settings of the offload: how a paused job is notified, how many jobs a loop runs at once, how long an
 * operation may take and how an engine's EAGAIN is retried.
 *
 * <p><b>Threading.</b> Immutable once built; safe on any thread. The {@link Builder} is not thread-safe.
 */
public final class OffloadConfig {

    /** How a paused job learns that its engine has completed. */
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

    private OffloadConfig(Builder b) {
        this.notify = b.notify;
        this.maxJobsPerLoop = b.maxJobsPerLoop;
        this.operationTimeout = b.operationTimeout;
        this.eagainInitialBackoff = b.eagainInitialBackoff;
        this.eagainMaxBackoff = b.eagainMaxBackoff;
        this.eagainMaxRetries = b.eagainMaxRetries;
    }

    /** A new builder with the defaults. */
    public static Builder builder() {
        return new Builder();
    }

    /** The defaults: AUTO, 1024 jobs per loop, 10 s timeout, EAGAIN backoff 1 ms doubling to 64 ms, 8 retries. */
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

    /** A builder that starts from these settings. */
    public Builder toBuilder() {
        return new Builder().notify(notify).maxJobsPerLoop(maxJobsPerLoop).operationTimeout(operationTimeout)
                .eagainInitialBackoff(eagainInitialBackoff).eagainMaxBackoff(eagainMaxBackoff)
                .eagainMaxRetries(eagainMaxRetries);
    }

    @Override
    public String toString() {
        return "OffloadConfig[notify=" + notify + ", maxJobsPerLoop=" + maxJobsPerLoop + ", operationTimeout="
                + operationTimeout + ", eagainBackoff=" + eagainInitialBackoff + ".." + eagainMaxBackoff
                + ", eagainMaxRetries=" + eagainMaxRetries + ']';
    }

    /** Builds an {@link OffloadConfig}. Not thread-safe. */
    public static final class Builder {
        private Notify notify = Notify.AUTO;
        private int maxJobsPerLoop = 1024;
        private Duration operationTimeout = Duration.ofSeconds(10);
        private Duration eagainInitialBackoff = Duration.ofMillis(1);
        private Duration eagainMaxBackoff = Duration.ofMillis(64);
        private int eagainMaxRetries = 8;

        private Builder() {
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
         * Builds the settings.
         *
         * @throws IllegalArgumentException when eagainMaxBackoff is shorter than eagainInitialBackoff
         */
        public OffloadConfig build() {
            if (eagainMaxBackoff.compareTo(eagainInitialBackoff) < 0) {
                throw new IllegalArgumentException("eagainMaxBackoff " + eagainMaxBackoff
                        + " is shorter than eagainInitialBackoff " + eagainInitialBackoff
                        + "; raise eagainMaxBackoff or lower eagainInitialBackoff");
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
