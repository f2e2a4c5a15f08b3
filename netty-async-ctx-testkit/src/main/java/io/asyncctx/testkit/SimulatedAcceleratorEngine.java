package io.asyncctx.testkit;

import io.asyncctx.AsyncEngineException;
import io.asyncctx.engine.AbstractAsyncEngine;
import io.asyncctx.engine.EventFd;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.engine.PendingOperation;

import java.security.PublicKey;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Threading: thread-safe and shared by all connections. {@link #offer} and {@link #cancel} run on the
 * submitting connection's owner thread and never block (a full ring answers EAGAIN). The poller thread waits with
 * {@link LockSupport#parkNanos} until the earliest due time, then completes everything due and signals each distinct
 * wait fd once per batch ({@link FdMode#SHARED_PER_LOOP}: one write per event loop however many of its ctxs
 * completed). The counters may be read from any thread. {@link #close()} may be called from any thread but the
 * engine's own; it stops the poller and the signers and fails what is still queued.
 *
 * <p>A model of a QAT-like accelerator for tests and benchmarks: a request ring of fixed capacity, a fixed service
 * latency that costs no CPU, and one polling thread that collects completions in batches, as a device driver's
 * polling thread does. Results are real: a {@link KeySigner} computes them on a small signer pool as soon as a
 * request is offered, in parallel with the modelled latency, so a request completes at its submission time plus the
 * latency (or when its signature is ready, if the signers are slower than that).
 */
public final class SimulatedAcceleratorEngine extends AbstractAsyncEngine {

    private static final int DUE = 1;
    private static final int COMPUTED = 2;
    private static final int RELEASED = 4;
    private static final long JOIN_MILLIS = 5_000;

    /** One request in the ring. */
    private final class Request implements Runnable {
        final PendingOperation operation;
        final long dueNanos;
        final AtomicInteger flags = new AtomicInteger();
        volatile byte[] result;
        volatile Throwable error;

        Request(PendingOperation operation, long dueNanos) {
            this.operation = operation;
            this.dueNanos = dueNanos;
        }

        /** The signer pool's task: compute now, deliver at the due time (or now, if that has passed). */
        @Override
        public void run() {
            if (isReleased()) {
                return; // dropped by cancel or close
            }
            if (operation.isCancelled()) {
                drop(); // abandoned without a cancel: skip the work, free the slot
                return;
            }
            try {
                result = signer.perform(operation.operation());
            } catch (Throwable t) {
                error = t;
            }
            if ((flags.getAndUpdate(f -> f | COMPUTED) & DUE) != 0) {
                deliver(false); // the poller saw it due before the signature was ready: late, deliver alone
            }
        }

        boolean isReleased() {
            return (flags.get() & RELEASED) != 0;
        }

        /** The poller found it due; true when its result is ready and the poller must deliver it. */
        boolean markDue() {
            return (flags.getAndUpdate(f -> f | DUE) & COMPUTED) != 0;
        }

        /** Delivers the computed outcome; with {@code quiet} the caller signals: true when it must. */
        boolean deliver(boolean quiet) {
            return error != null ? release(null, error, quiet) : release(result, null, quiet);
        }

        /** Frees the ring slot once without delivering anything: the job was cancelled or abandoned. */
        boolean drop() {
            if ((flags.getAndUpdate(f -> f | RELEASED) & RELEASED) != 0) {
                return false;
            }
            inFlight.decrementAndGet();
            cancelled.incrementAndGet();
            return true;
        }

        /** Frees the ring slot once and delivers; true when a result was taken quietly and needs a signal. */
        boolean release(byte[] value, Throwable failure, boolean quiet) {
            if ((flags.getAndUpdate(f -> f | RELEASED) & RELEASED) != 0) {
                return false;
            }
            inFlight.decrementAndGet();
            if (failure != null) {
                failed.incrementAndGet();
                operation.fail(failure);
                return false;
            }
            completed.incrementAndGet();
            if (quiet) {
                return operation.completeQuietly(value);
            }
            operation.complete(value);
            return false;
        }
    }

    private final KeySigner signer;
    private final long latencyNanos;
    private final int ringSize;
    private final ReentrantLock lock = new ReentrantLock();
    /** Requests not yet due, in due order (the latency is fixed, so offer order). Guarded by {@link #lock}. */
    private final ArrayDeque<Request> ring;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final ThreadPoolExecutor signers;
    private final Thread poller;
    private volatile boolean running = true;

    private final AtomicLong submitted = new AtomicLong();
    private final AtomicLong completed = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();
    private final AtomicLong rejected = new AtomicLong();
    private final AtomicLong cancelled = new AtomicLong();
    private final AtomicLong batches = new AtomicLong();
    private final AtomicLong signals = new AtomicLong();
    private final AtomicInteger maxInFlight = new AtomicInteger();

    private SimulatedAcceleratorEngine(Builder b) {
        super(b.name, b.fdMode);
        this.signer = b.signer;
        this.latencyNanos = b.latency.toNanos();
        this.ringSize = b.ringSize;
        this.ring = new ArrayDeque<>(b.ringSize);
        AtomicInteger threadIds = new AtomicInteger();
        this.signers = new ThreadPoolExecutor(b.signerThreads, b.signerThreads, 0, TimeUnit.MILLISECONDS,
                new LinkedBlockingQueue<>(), r -> {
                    Thread t = new Thread(r, b.name + "-signer-" + threadIds.incrementAndGet());
                    t.setDaemon(true);
                    return t;
                });
        this.poller = new Thread(this::poll, b.name + "-poller");
        this.poller.setDaemon(true);
        this.poller.start();
    }

    /** A builder; {@link Builder#signer} is required. */
    public static Builder builder() {
        return new Builder();
    }

    @Override
    public PublicKey publicKey() {
        return signer.publicKey();
    }

    /** The modelled service latency. */
    public Duration latency() {
        return Duration.ofNanos(latencyNanos);
    }

    /** The ring's capacity: the most requests in flight before offers answer EAGAIN. */
    public int ringSize() {
        return ringSize;
    }

    @Override
    protected boolean offer(PendingOperation operation) {
        if (!running) {
            operation.fail(new AsyncEngineException("engine '" + name() + "' is closed"));
            return true;
        }
        int n;
        do {
            n = inFlight.get();
            if (n >= ringSize) {
                rejected.incrementAndGet();
                return false;
            }
        } while (!inFlight.compareAndSet(n, n + 1));
        maxInFlight.accumulateAndGet(n + 1, Math::max);
        submitted.incrementAndGet();
        Request request;
        boolean wasEmpty;
        lock.lock();
        try {
            // Due times are taken under the lock, so the ring stays in due order across owner threads.
            request = new Request(operation, System.nanoTime() + latencyNanos);
            wasEmpty = ring.isEmpty();
            ring.addLast(request);
        } finally {
            lock.unlock();
        }
        if (wasEmpty) {
            LockSupport.unpark(poller);
        }
        try {
            signers.execute(request);
        } catch (RuntimeException e) { // rejected: closing
            request.release(null, new AsyncEngineException("engine '" + name() + "' is closed", e), false);
        }
        return true;
    }

    @Override
    protected void cancel(PendingOperation operation) {
        Request found = null;
        lock.lock();
        try {
            for (Iterator<Request> it = ring.iterator(); it.hasNext(); ) {
                Request r = it.next();
                if (r.operation == operation) {
                    it.remove();
                    found = r;
                    break;
                }
            }
        } finally {
            lock.unlock();
        }
        if (found != null) {
            found.drop();
        }
    }

    private void poll() {
        List<Request> due = new ArrayList<>();
        IdentityHashMap<EventFd, Boolean> fds = new IdentityHashMap<>();
        List<PendingOperation> callbacks = new ArrayList<>();
        while (running) {
            long waitNanos = 0;
            lock.lock();
            try {
                long now = System.nanoTime();
                Request head;
                while ((head = ring.peekFirst()) != null && head.dueNanos - now <= 0) {
                    due.add(ring.pollFirst());
                }
                if (due.isEmpty()) {
                    waitNanos = head == null ? Long.MAX_VALUE : head.dueNanos - now;
                }
            } finally {
                lock.unlock();
            }
            if (due.isEmpty()) {
                if (waitNanos == Long.MAX_VALUE) {
                    LockSupport.park(this);
                } else {
                    LockSupport.parkNanos(this, waitNanos);
                }
                continue;
            }
            completeBatch(due, fds, callbacks);
        }
    }

    private void completeBatch(List<Request> due, IdentityHashMap<EventFd, Boolean> fds,
                               List<PendingOperation> callbacks) {
        int delivered = 0;
        for (Request r : due) {
            if (!r.markDue()) {
                continue; // the signer delivers it when its result is ready
            }
            delivered++;
            if (r.deliver(true)) {
                if (r.operation.usesCallback()) {
                    callbacks.add(r.operation);
                } else if (r.operation.eventFd() != null) {
                    fds.put(r.operation.eventFd(), Boolean.TRUE);
                }
            }
        }
        due.clear();
        if (delivered > 0) {
            batches.incrementAndGet();
        }
        for (EventFd fd : fds.keySet()) {
            fd.signal();
        }
        for (PendingOperation op : callbacks) {
            op.signal();
        }
        signals.addAndGet(fds.size() + callbacks.size());
        fds.clear();
        callbacks.clear();
    }

    /**
     * Stops the poller and the signers and fails every request still in flight. Idempotent; any thread but the
     * engine's own. Waits up to a few seconds for a signature in progress to finish.
     */
    @Override
    public void close() {
        if (!markClosed()) {
            return;
        }
        running = false;
        LockSupport.unpark(poller);
        List<Runnable> notStarted = signers.shutdownNow();
        try {
            poller.join(JOIN_MILLIS);
            signers.awaitTermination(JOIN_MILLIS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        List<Request> queued;
        lock.lock();
        try {
            queued = new ArrayList<>(ring);
            ring.clear();
        } finally {
            lock.unlock();
        }
        AsyncEngineException closedError = new AsyncEngineException("engine '" + name() + "' was closed");
        for (Request r : queued) {
            r.release(null, closedError, false);
        }
        for (Runnable r : notStarted) {
            ((Request) r).release(null, closedError, false);
        }
        super.close();
    }

    /** Requests accepted into the ring. */
    public long submitted() {
        return submitted.get();
    }

    /** Requests completed with a result. */
    public long completed() {
        return completed.get();
    }

    /** Requests failed (the signer threw, or the engine was closed). */
    public long failed() {
        return failed.get();
    }

    /** Offers refused because the ring was full (EAGAIN). */
    public long rejected() {
        return rejected.get();
    }

    /** Requests dropped because their job was cancelled or abandoned before they completed. */
    public long cancelled() {
        return cancelled.get();
    }

    /** Poller passes that delivered at least one completion. */
    public long batches() {
        return batches.get();
    }

    /** Signals sent by the poller: one per distinct wait fd and one per callback, per batch. */
    public long signals() {
        return signals.get();
    }

    /** The most requests seen in flight at once. */
    public int maxInFlight() {
        return maxInFlight.get();
    }

    /** Requests in flight now (in the ring or being delivered). */
    public int inFlight() {
        return inFlight.get();
    }

    @Override
    public String toString() {
        return "SimulatedAcceleratorEngine[" + name() + ", latency=" + latency() + ", ring=" + inFlight() + '/'
                + ringSize + ", " + fdMode() + ']';
    }

    /** Threading: not thread-safe; use on one thread. Configures a {@link SimulatedAcceleratorEngine}. */
    public static final class Builder {
        private String name = "simulated";
        private Duration latency = Duration.ofMillis(1);
        private int ringSize = 1024;
        private FdMode fdMode = FdMode.SHARED_PER_LOOP;
        private KeySigner signer;
        private int signerThreads = Math.max(1, Runtime.getRuntime().availableProcessors() / 2);

        private Builder() {
        }

        /** The engine's name for logs, metrics and thread names; default "simulated". */
        public Builder name(String name) {
            this.name = Objects.requireNonNull(name, "name");
            return this;
        }

        /** The service latency of every request, zero or more; default 1 ms. */
        public Builder latency(Duration latency) {
            Objects.requireNonNull(latency, "latency");
            if (latency.isNegative()) {
                throw new IllegalArgumentException("latency: " + latency + " (expected zero or more)");
            }
            this.latency = latency;
            return this;
        }

        /** The ring's capacity, at least 1; default 1024. */
        public Builder ringSize(int ringSize) {
            if (ringSize < 1) {
                throw new IllegalArgumentException("ringSize: " + ringSize + " (expected at least 1)");
            }
            this.ringSize = ringSize;
            return this;
        }

        /** How the fd path signals; default {@link FdMode#SHARED_PER_LOOP}. */
        public Builder fdMode(FdMode fdMode) {
            this.fdMode = Objects.requireNonNull(fdMode, "fdMode");
            return this;
        }

        /** Computes the results; required. */
        public Builder signer(KeySigner signer) {
            this.signer = Objects.requireNonNull(signer, "signer");
            return this;
        }

        /** Threads that compute signatures, at least 1; default half the processors. */
        public Builder signerThreads(int signerThreads) {
            if (signerThreads < 1) {
                throw new IllegalArgumentException("signerThreads: " + signerThreads + " (expected at least 1)");
            }
            this.signerThreads = signerThreads;
            return this;
        }

        /**
         * Starts the engine's threads.
         *
         * @throws IllegalStateException when no signer was given
         */
        public SimulatedAcceleratorEngine build() {
            if (signer == null) {
                throw new IllegalStateException("signer: not set; call signer(new JcaKeySigner(privateKey, publicKey, "
                        + "provider)) so that the engine computes real results");
            }
            return new SimulatedAcceleratorEngine(this);
        }
    }
}
