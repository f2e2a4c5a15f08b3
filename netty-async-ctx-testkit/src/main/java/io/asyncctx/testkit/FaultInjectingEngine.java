package io.asyncctx.testkit;

import io.asyncctx.AsyncEngineException;
import io.asyncctx.AsyncStatus;
import io.asyncctx.engine.AbstractAsyncEngine;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.engine.PendingOperation;

import java.security.PublicKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Threading: thread-safe. {@link #offer} and {@link #cancel} run on the submitting connection's owner thread
 * and do not block, except under {@linkplain Builder#completeBeforePauseRate completeBeforePause}, which waits (a
 * bounded time) for the completion to happen on a scheduler thread before it returns. Completions and signals come
 * from the scheduler thread(s), or from the caller of {@link #completeHung()}. Counters may be read from any thread.
 * {@link #close()} stops the scheduler and fails what is still in flight.
 *
 * <p>An engine for users' tests that injects faults: it computes real results with a {@link KeySigner} but, at rates
 * chosen in its {@link Builder}, answers EAGAIN, sets status ERR at submit without taking the operation (the man
 * page's synchronous fatal fault), fails the operation, never completes it ("hangs": only a deadline, a cancel or
 * {@link #completeHung()} ends it), completes it on another thread before the submit returns (before the job has
 * paused), signals it twice, or signals spuriously (no completion) before the real completion. Completions come after
 * a fixed or uniformly random latency, on the engine's own scheduler thread(s).
 *
 * <p><b>Determinism.</b> All random decisions of an operation are drawn from one {@link java.util.SplittableRandom}
 * seeded by the builder, when it is submitted, a fixed number of draws per submission: the same seed and the same
 * submission order give the same faults and latencies, whatever happens later. Answers that depend on timing (the
 * {@linkplain Builder#capacity capacity}, cancels) do not change the draws. Submit from one owner thread for a
 * reproducible order.
 *
 * <p><b>Structure.</b> What to inject is decided by {@link FaultPlan} (the rates, the latency range and the seeded
 * draws); this class delivers it (scheduler, in-flight bookkeeping, signals, counters). It stays above the ~450-line
 * guide because of its nested {@link Builder}, about 150 lines of documented setters: it stays nested so that
 * {@code FaultInjectingEngine.builder()} and {@code FaultInjectingEngine.Builder}, which users' tests already name,
 * remain the public API; without it the class is under 400 lines.
 */
public final class FaultInjectingEngine extends AbstractAsyncEngine {

    private static final long BEFORE_PAUSE_WAIT_SECONDS = 10;

    /** One operation in flight. */
    private final class Op {
        final PendingOperation pending;
        final boolean fail;
        final boolean hang;
        final boolean duplicate;
        final AtomicBoolean released = new AtomicBoolean();
        volatile Future<?> future;

        Op(PendingOperation pending, boolean fail, boolean hang, boolean duplicate) {
            this.pending = pending;
            this.fail = fail;
            this.hang = hang;
            this.duplicate = duplicate;
        }

        /** Takes the operation out of flight once; false when it was already released. */
        boolean release() {
            if (!released.compareAndSet(false, true)) {
                return false;
            }
            inFlight.remove(pending, this);
            inFlightCount.decrementAndGet();
            return true;
        }
    }

    private final KeySigner signer;
    private final FaultPlan plan;
    private final int capacity;
    private final ScheduledThreadPoolExecutor scheduler;
    private final ConcurrentHashMap<PendingOperation, Op> inFlight = new ConcurrentHashMap<>();
    private final AtomicInteger inFlightCount = new AtomicInteger();

    private final AtomicLong submitted = new AtomicLong();
    private final AtomicLong completed = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();
    private final AtomicLong statusErrors = new AtomicLong();
    private final AtomicLong eagain = new AtomicLong();
    private final AtomicLong hung = new AtomicLong();
    private final AtomicLong cancelled = new AtomicLong();
    private final AtomicLong completedBeforePause = new AtomicLong();
    private final AtomicLong duplicateSignals = new AtomicLong();
    private final AtomicLong spuriousSignals = new AtomicLong();

    private FaultInjectingEngine(Builder b) {
        super(b.name, b.fdMode);
        this.signer = b.signer;
        this.plan = new FaultPlan(b.seed, b.minLatency.toNanos(), b.maxLatency.toNanos(), b.statusErrRate,
                b.eagainRate, b.errorRate, b.hangRate, b.completeBeforePauseRate, b.duplicateSignalRate,
                b.spuriousSignalRate);
        this.capacity = b.capacity;
        AtomicInteger ids = new AtomicInteger();
        this.scheduler = new ScheduledThreadPoolExecutor(b.threads, r -> {
            Thread t = new Thread(r, b.name + "-" + ids.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        this.scheduler.setRemoveOnCancelPolicy(true);
    }

    /** A builder; {@link Builder#signer} is required. */
    public static Builder builder() {
        return new Builder();
    }

    @Override
    public PublicKey publicKey() {
        return signer.publicKey();
    }

    @Override
    protected boolean offer(PendingOperation pending) {
        // Every draw first, a fixed number per submission, so the sequence never depends on timing.
        FaultPlan.Draw draw = plan.draw();
        long latency = draw.latencyNanos();
        submitted.incrementAndGet();
        if (isClosed()) {
            failed.incrementAndGet();
            pending.fail(new AsyncEngineException("engine '" + name() + "' is closed"));
            return true;
        }
        FaultPlan.Fault fault = draw.fault();
        if (fault == FaultPlan.Fault.STATUS_ERR) {
            statusErrors.incrementAndGet();
            pending.job().waitCtx().setStatus(AsyncStatus.ERR);
            return true;
        }
        if (fault == FaultPlan.Fault.EAGAIN || !reserveSlot()) {
            eagain.incrementAndGet();
            return false;
        }
        Op op = new Op(pending, fault == FaultPlan.Fault.FAIL, fault == FaultPlan.Fault.HANG,
                draw.duplicateSignal());
        inFlight.put(pending, op);
        boolean spuriousFirst = draw.spuriousSignal();
        if (op.hang) {
            hung.incrementAndGet();
            if (spuriousFirst) {
                schedule(op, () -> signalSpuriously(op), latency / 2);
            }
            return true;
        }
        if (draw.completeBeforePause()) {
            completeBeforeReturning(op, spuriousFirst);
            return true;
        }
        if (spuriousFirst) {
            // Chained, so the spurious signal always comes before the completion.
            long first = latency / 2;
            schedule(op, () -> {
                signalSpuriously(op);
                schedule(op, () -> finish(op), latency - first);
            }, first);
        } else {
            schedule(op, () -> finish(op), latency);
        }
        return true;
    }

    private boolean reserveSlot() {
        int n;
        do {
            n = inFlightCount.get();
            if (n >= capacity) {
                return false;
            }
        } while (!inFlightCount.compareAndSet(n, n + 1));
        return true;
    }

    private void completeBeforeReturning(Op op, boolean spuriousFirst) {
        CountDownLatch done = new CountDownLatch(1);
        try {
            op.future = scheduler.submit(() -> {
                try {
                    if (spuriousFirst) {
                        signalSpuriously(op);
                    }
                    if (finish(op)) {
                        completedBeforePause.incrementAndGet();
                    }
                } finally {
                    done.countDown();
                }
            });
        } catch (RejectedExecutionException e) {
            abort(op, e);
            return;
        }
        try {
            if (!done.await(BEFORE_PAUSE_WAIT_SECONDS, TimeUnit.SECONDS)) {
                abort(op, new AsyncEngineException("completeBeforePause: the scheduler did not run within "
                        + BEFORE_PAUSE_WAIT_SECONDS + " s"));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            abort(op, e);
        }
    }

    private void schedule(Op op, Runnable task, long delayNanos) {
        if (op.released.get()) {
            return;
        }
        try {
            op.future = scheduler.schedule(task, delayNanos, TimeUnit.NANOSECONDS);
        } catch (RejectedExecutionException e) {
            abort(op, e); // closing
        }
    }

    private void signalSpuriously(Op op) {
        if (!op.released.get()) {
            spuriousSignals.incrementAndGet();
            op.pending.signal();
        }
    }

    /** Delivers the operation's drawn outcome (a hung one completes); false when it had been released already. */
    private boolean finish(Op op) {
        if (!op.release()) {
            return false;
        }
        if (op.fail) {
            failed.incrementAndGet();
            if (op.pending.job().fail(new AsyncEngineException("injected fault: the operation failed"))) {
                signal(op);
            }
            return true;
        }
        byte[] result;
        try {
            result = signer.perform(op.pending.operation());
        } catch (Exception e) {
            failed.incrementAndGet();
            if (op.pending.job().fail(e)) {
                signal(op);
            }
            return true;
        }
        completed.incrementAndGet();
        if (op.pending.completeQuietly(result)) {
            signal(op);
        }
        return true;
    }

    private void signal(Op op) {
        op.pending.signal();
        if (op.duplicate) {
            duplicateSignals.incrementAndGet();
            op.pending.signal();
        }
    }

    private void abort(Op op, Throwable cause) {
        if (op.release()) {
            failed.incrementAndGet();
            op.pending.fail(cause instanceof AsyncEngineException ? cause
                    : new AsyncEngineException("engine '" + name() + "' is closed", cause));
        }
    }

    @Override
    protected void cancel(PendingOperation pending) {
        Op op = inFlight.get(pending);
        if (op != null && op.release()) {
            Future<?> f = op.future;
            if (f != null) {
                f.cancel(false);
            }
            cancelled.incrementAndGet();
        }
    }

    /**
     * Completes every hung operation now, on the calling thread, with a real result, and signals it. Any thread.
     *
     * @return how many were completed
     */
    public int completeHung() {
        List<Op> hanging = new ArrayList<>();
        for (Op op : inFlight.values()) {
            if (op.hang) {
                hanging.add(op);
            }
        }
        int n = 0;
        for (Op op : hanging) {
            if (finish(op)) {
                n++;
            }
        }
        return n;
    }

    /**
     * Stops the scheduler thread(s), waiting a few seconds for a completion in progress, and fails every operation
     * still in flight (hung ones too). Idempotent (a CAS through {@link #markClosed()}: one caller closes, later and
     * concurrent calls return at once, and submissions fail from that moment); any thread but the engine's own.
     */
    @Override
    public void close() {
        if (!markClosed()) {
            return;
        }
        scheduler.shutdownNow();
        try {
            scheduler.awaitTermination(BEFORE_PAUSE_WAIT_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        AsyncEngineException closed = new AsyncEngineException("engine '" + name() + "' was closed");
        for (Op op : new ArrayList<>(inFlight.values())) {
            abort(op, closed);
        }
    }

    /** Submissions seen (every call of offer, including retries after EAGAIN). */
    public long submitted() {
        return submitted.get();
    }

    /** Operations completed with a result (including hung ones completed by {@link #completeHung()}). */
    public long completed() {
        return completed.get();
    }

    /** Operations failed: injected failures, signer errors, and those failed by {@link #close()}. */
    public long failed() {
        return failed.get();
    }

    /** Submissions answered with status ERR at submit. */
    public long statusErrors() {
        return statusErrors.get();
    }

    /** Submissions answered with EAGAIN, drawn or because the capacity was reached. */
    public long eagain() {
        return eagain.get();
    }

    /** Operations that were made to hang. */
    public long hung() {
        return hung.get();
    }

    /** Operations dropped by a cancel before they completed. */
    public long cancelled() {
        return cancelled.get();
    }

    /** Operations completed on another thread before their submit returned. */
    public long completedBeforePause() {
        return completedBeforePause.get();
    }

    /** Second signals sent after a completion. */
    public long duplicateSignals() {
        return duplicateSignals.get();
    }

    /** Signals sent with no completion. */
    public long spuriousSignals() {
        return spuriousSignals.get();
    }

    /** Operations in flight now (scheduled or hung). */
    public int inFlight() {
        return inFlightCount.get();
    }

    @Override
    public String toString() {
        return "FaultInjectingEngine[" + name() + ", inFlight=" + inFlight() + ", submitted=" + submitted()
                + ", completed=" + completed() + ", failed=" + failed() + ", eagain=" + eagain() + ", hung="
                + hung() + ']';
    }

    /**
     * Threading: not thread-safe; use on one thread. Configures a {@link FaultInjectingEngine}; by default it injects
     * nothing.
     */
    public static final class Builder {
        private String name = "fault-injecting";
        private KeySigner signer;
        private long seed = 1;
        private Duration minLatency = Duration.ofMillis(1);
        private Duration maxLatency = Duration.ofMillis(1);
        private int capacity = Integer.MAX_VALUE;
        private double statusErrRate;
        private double eagainRate;
        private double errorRate;
        private double hangRate;
        private double completeBeforePauseRate;
        private double duplicateSignalRate;
        private double spuriousSignalRate;
        private FdMode fdMode = FdMode.PER_CTX;
        private int threads = 1;

        private Builder() {
        }

        /** The name for logs and thread names; default "fault-injecting". */
        public Builder name(String name) {
            this.name = Objects.requireNonNull(name, "name");
            return this;
        }

        /** Computes the results; required. */
        public Builder signer(KeySigner signer) {
            this.signer = Objects.requireNonNull(signer, "signer");
            return this;
        }

        /** The seed of every random decision; default 1. */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** A fixed latency, zero or more; default 1 ms. */
        public Builder latency(Duration latency) {
            return latency(latency, latency);
        }

        /** A latency drawn uniformly from [min, max] for each operation. */
        public Builder latency(Duration min, Duration max) {
            Objects.requireNonNull(min, "min");
            Objects.requireNonNull(max, "max");
            if (min.isNegative() || max.compareTo(min) < 0) {
                throw new IllegalArgumentException("latency: [" + min + ", " + max + "] (expected 0 <= min <= max)");
            }
            this.minLatency = min;
            this.maxLatency = max;
            return this;
        }

        /** The most operations in flight (hung ones included); beyond it submissions get EAGAIN. Default unbounded. */
        public Builder capacity(int capacity) {
            if (capacity < 1) {
                throw new IllegalArgumentException("capacity: " + capacity + " (expected at least 1)");
            }
            this.capacity = capacity;
            return this;
        }

        /** The share of submissions answered with status ERR at submit, without taking the operation. */
        public Builder statusErrRate(double rate) {
            this.statusErrRate = rate("statusErrRate", rate);
            return this;
        }

        /** The share of submissions answered with EAGAIN at random. */
        public Builder eagainRate(double rate) {
            this.eagainRate = rate("eagainRate", rate);
            return this;
        }

        /** The share of operations that fail after their latency (the job ends with ERR). */
        public Builder errorRate(double rate) {
            this.errorRate = rate("errorRate", rate);
            return this;
        }

        /** The share of operations that never complete until cancelled, {@link #completeHung()} or close. */
        public Builder hangRate(double rate) {
            this.hangRate = rate("hangRate", rate);
            return this;
        }

        /**
         * The share of completing operations (with a result or an injected failure) that complete on a scheduler
         * thread before their submit returns, so before the job has paused; the submit waits for it.
         */
        public Builder completeBeforePauseRate(double rate) {
            this.completeBeforePauseRate = rate("completeBeforePauseRate", rate);
            return this;
        }

        /** The share of completions signalled twice. */
        public Builder duplicateSignalRate(double rate) {
            this.duplicateSignalRate = rate("duplicateSignalRate", rate);
            return this;
        }

        /** The share of operations that get a signal with no completion, at half their latency, before the real one. */
        public Builder spuriousSignalRate(double rate) {
            this.spuriousSignalRate = rate("spuriousSignalRate", rate);
            return this;
        }

        /** How the fd path signals; default {@link FdMode#PER_CTX}. */
        public Builder fdMode(FdMode fdMode) {
            this.fdMode = Objects.requireNonNull(fdMode, "fdMode");
            return this;
        }

        /** Scheduler threads that complete and signal, at least 1; default 1. */
        public Builder threads(int threads) {
            if (threads < 1) {
                throw new IllegalArgumentException("threads: " + threads + " (expected at least 1)");
            }
            this.threads = threads;
            return this;
        }

        /**
         * Starts the engine's scheduler.
         *
         * @throws IllegalStateException when no signer was given, or the submit outcomes' rates (statusErr, eagain,
         *     hang, error) add up to more than 1
         */
        public FaultInjectingEngine build() {
            if (signer == null) {
                throw new IllegalStateException("signer: not set; call signer(new JcaKeySigner(privateKey, publicKey, "
                        + "provider)) so that the engine computes real results");
            }
            double sum = statusErrRate + eagainRate + hangRate + errorRate;
            if (sum > 1.0) {
                throw new IllegalStateException("statusErrRate + eagainRate + hangRate + errorRate = " + sum
                        + "; each operation gets one of these outcomes, so they must add up to 1 at most");
            }
            return new FaultInjectingEngine(this);
        }

        private static double rate(String what, double rate) {
            if (!(rate >= 0.0 && rate <= 1.0)) {
                throw new IllegalArgumentException(what + ": " + rate + " (expected a share between 0 and 1)");
            }
            return rate;
        }
    }
}
