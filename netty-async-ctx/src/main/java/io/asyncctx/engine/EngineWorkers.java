package io.asyncctx.engine;

import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;

/**
 * Threading: thread-safe. {@link #offer} and {@link #execute} never block (a full queue answers false, which
 * the engine turns into EAGAIN); they run on event loops. {@link #close} may be called from any thread except a worker
 * and only the first call does anything (a CAS); it waits up to the given time for the workers to end. Each
 * {@link Worker} is created, used and closed on its own worker thread.
 *
 * <p>The worker pool that engines share: a bounded queue of {@link PendingOperation}s (and, for engines that run the
 * JDK provider's delegated tasks, {@link Runnable}s), a fixed set of daemon worker threads, each with its own {@link
 * Worker} (thread-confined crypto objects, a token session), and a close that stops the workers and fails what is still
 * queued.
 *
 * <p><b>Cancellation is lazy.</b> An abandoned operation stays in the queue and the worker that takes it skips it
 * ({@link PendingOperation#isCancelled()}, counted by {@link #cancelled()}): no O(capacity) removal from the middle of
 * the queue on the event loop. A skipped operation holds its queue slot until a worker reaches it.
 *
 * <p><b>Hand-off.</b> Submitting takes no lock (the queue is lock-free and bounded by a counter), so an event loop
 * never waits for a worker that is taking an item. Idle workers park on a last-in-first-out stack: a submit wakes one
 * only when one is parked, and it wakes the one that parked last, so under a trickle of cheap operations the same
 * worker (its caches and crypto objects warm) does them all while the others stay parked ({@code EngineWorkersTest}).
 * It does not save wake-ups: under h2load storms a P-256 operation still finds the workers parked (0.92 wake-ups per
 * operation, {@link #wakeups()}; 0.15 for RSA, whose operations keep them busy), and the CPU per handshake measured
 * the same as with the lock-and-condition queue this replaced (RESULTS.md, issue 12, quiet machine).
 */
public final class EngineWorkers {

    private static final System.Logger LOGGER = System.getLogger(EngineWorkers.class.getName());

    /**
     * Threading: called on one worker thread only. One worker thread's side: performs operations with objects only that
     * thread uses.
     */
    public interface Worker {
        /**
         * Performs the operation; may block for as long as it takes. The pool delivers the result, or fails the
         * operation with what was thrown (an {@link Error} too: the worker stays alive).
         */
        byte[] perform(KeyOperation operation) throws GeneralSecurityException;

        /** Releases what the worker holds (a session); called once on the worker thread when it ends. */
        default void close() {
        }
    }

    private final String engineName;
    private final int capacity;
    private final ConcurrentLinkedQueue<Object> queue = new ConcurrentLinkedQueue<>();
    private final AtomicInteger size = new AtomicInteger();
    private final ConcurrentLinkedDeque<Parked> idle = new ConcurrentLinkedDeque<>();
    private final LongAdder wakeups = new LongAdder();
    private final List<Thread> threads;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final LongAdder completed = new LongAdder();
    private final LongAdder failed = new LongAdder();
    private final LongAdder rejected = new LongAdder();
    private final LongAdder cancelled = new LongAdder();
    private volatile boolean stopping;

    /**
     * Creates the workers; {@link #start()} starts them.
     *
     * @param engineName the engine's name, for thread names and error messages
     * @param threadNamePrefix worker threads are named prefix + index
     * @param workerCount the number of worker threads, at least 1
     * @param capacity the most queued items, at least 1
     * @param workerFactory called once on each worker thread when it starts
     */
    public EngineWorkers(String engineName, String threadNamePrefix, int workerCount, int capacity,
                         Supplier<? extends Worker> workerFactory) {
        this.engineName = Objects.requireNonNull(engineName, "engineName");
        Objects.requireNonNull(threadNamePrefix, "threadNamePrefix");
        Objects.requireNonNull(workerFactory, "workerFactory");
        if (workerCount < 1) {
            throw new IllegalArgumentException("workers: " + workerCount + " (expected at least 1)");
        }
        if (capacity < 1) {
            throw new IllegalArgumentException("queueCapacity: " + capacity + " (expected at least 1)");
        }
        this.capacity = capacity;
        List<Thread> list = new ArrayList<>(workerCount);
        for (int i = 0; i < workerCount; i++) {
            Thread t = new Thread(() -> run(workerFactory), threadNamePrefix + i);
            t.setDaemon(true);
            list.add(t);
        }
        this.threads = List.copyOf(list);
    }

    /** Starts the worker threads. Call once. */
    public void start() {
        for (Thread t : threads) {
            t.start();
        }
    }

    /**
     * Queues an operation. When the pool is closed, fails the operation and answers true (the job sees the failure).
     *
     * @return false when the queue is full (the job's status becomes EAGAIN)
     */
    public boolean offer(PendingOperation operation) {
        if (stopping) {
            failOne(operation, closedException());
            return true;
        }
        if (!enqueue(operation)) {
            rejected.increment();
            return false;
        }
        if (stopping && remove(operation)) {
            failOne(operation, closedException()); // raced with close(): its drain may have run before this offer
        }
        return true;
    }

    /**
     * Queues a task (the JDK provider's delegated work) on the same workers.
     *
     * @return false when the queue is full or the pool is closed
     */
    public boolean execute(Runnable task) {
        Objects.requireNonNull(task, "task");
        if (stopping || !enqueue(task)) {
            return false;
        }
        if (stopping) {
            remove(task);
            return false;
        }
        return true;
    }

    private boolean enqueue(Object item) {
        if (size.incrementAndGet() > capacity) {
            size.decrementAndGet();
            return false;
        }
        queue.offer(item);
        Parked worker = idle.pollFirst();
        if (worker != null) {
            wakeups.increment();
            worker.parked = false;
            LockSupport.unpark(worker.thread);
        }
        return true;
    }

    private boolean remove(Object item) {
        if (queue.remove(item)) {
            size.decrementAndGet();
            return true;
        }
        return false;
    }

    private Object poll() {
        Object item = queue.poll();
        if (item != null) {
            size.decrementAndGet();
        }
        return item;
    }

    /**
     * Parks the calling worker until a submit wakes it or the pool stops. It pushes itself on the idle stack first and
     * then looks at the queue once more, so an item queued in between is never left waiting for a wake-up.
     */
    private void park(Parked me) {
        me.parked = true;
        idle.offerFirst(me);
        if (!queue.isEmpty() || stopping) {
            if (idle.removeFirstOccurrence(me)) {
                me.parked = false;
                return;
            }
            // a submit took this worker off the stack and is waking it: park() below returns at once
        }
        while (me.parked && !stopping) {
            LockSupport.park(this);
        }
        Thread.interrupted(); // close() interrupts; the run loop's condition decides
    }

    /** The number of worker threads. */
    public int workerCount() {
        return threads.size();
    }

    /** The worker threads alive now. */
    public int liveWorkers() {
        int n = 0;
        for (Thread t : threads) {
            if (t.isAlive()) {
                n++;
            }
        }
        return n;
    }

    /** The queue's capacity. */
    public int capacity() {
        return capacity;
    }

    /** Items queued now (abandoned operations included until a worker skips them). */
    public int queued() {
        return Math.max(0, size.get());
    }

    /**
     * Parked workers woken by a submit so far: at most one per submit, none when a worker was already awake to take
     * the item. Divided by the operations, it is what the hand-off costs in thread wake-ups.
     */
    public long wakeups() {
        return wakeups.sum();
    }

    /** Operations delivered with a result. */
    public long completed() {
        return completed.sum();
    }

    /** Operations that failed (the worker's crypto threw, or the pool closed first). */
    public long failed() {
        return failed.sum();
    }

    /** Operations refused because the queue was full. */
    public long rejected() {
        return rejected.sum();
    }

    /** Operations skipped because their job was abandoned before a worker reached them. */
    public long cancelled() {
        return cancelled.sum();
    }

    /** True once {@link #close} has been called. */
    public boolean isClosed() {
        return closed.get();
    }

    /**
     * Stops the workers (interrupts them; an operation in progress finishes first), waits up to {@code joinMillis}
     * for them, then fails every queued operation and drops queued tasks. Only the first call does anything.
     *
     * @return true when every worker has ended (and closed its {@link Worker})
     */
    public boolean close(long joinMillis) {
        if (!closed.compareAndSet(false, true)) {
            return liveWorkers() == 0;
        }
        stopping = true;
        for (Thread t : threads) {
            t.interrupt();
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(joinMillis);
        boolean interrupted = false;
        boolean allEnded = true;
        for (Thread t : threads) {
            if (t == Thread.currentThread()) {
                allEnded = false;
                continue;
            }
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            try {
                if (left > 0) {
                    t.join(left);
                }
            } catch (InterruptedException e) {
                interrupted = true;
            }
            if (t.isAlive()) {
                allEnded = false;
                LOGGER.log(System.Logger.Level.DEBUG, "{0} is still busy after close(); it ends after its current "
                        + "operation", t.getName());
            }
        }
        IllegalStateException cause = closedException();
        List<Object> left = new ArrayList<>();
        for (Object item = poll(); item != null; item = poll()) {
            left.add(item);
        }
        for (Object item : left) {
            if (item instanceof PendingOperation op) {
                failOne(op, cause);
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        return allEnded;
    }

    private void run(Supplier<? extends Worker> workerFactory) {
        Worker worker;
        try {
            worker = workerFactory.get();
        } catch (RuntimeException | Error e) {
            LOGGER.log(System.Logger.Level.WARNING, "a worker of engine '" + engineName + "' could not start", e);
            return;
        }
        Parked me = new Parked(Thread.currentThread());
        try {
            while (!stopping) {
                Object item = poll();
                if (item == null) {
                    park(me);
                    continue;
                }
                if (item instanceof PendingOperation op) {
                    perform(worker, op);
                } else {
                    runTask((Runnable) item);
                }
            }
        } finally {
            try {
                worker.close();
            } catch (RuntimeException | Error e) {
                LOGGER.log(System.Logger.Level.DEBUG, "closing a worker of engine '" + engineName + "' failed", e);
            }
        }
    }

    private void perform(Worker worker, PendingOperation op) {
        if (op.isCancelled()) {
            cancelled.increment();
            return;
        }
        byte[] result;
        try {
            result = worker.perform(op.operation());
        } catch (GeneralSecurityException | RuntimeException | Error e) {
            failOne(op, e); // an Error (a native library broke): fail the job, keep the worker
            return;
        }
        completed.increment();
        op.complete(result);
    }

    private void failOne(PendingOperation op, Throwable cause) {
        failed.increment();
        op.fail(cause);
    }

    private void runTask(Runnable task) {
        try {
            task.run();
        } catch (Throwable t) {
            LOGGER.log(System.Logger.Level.WARNING, "a task on the workers of engine '" + engineName + "' threw", t);
        }
    }

    private IllegalStateException closedException() {
        return new IllegalStateException("engine '" + engineName + "' is closed");
    }

    /** A worker's entry on the idle stack. */
    private static final class Parked {
        final Thread thread;
        volatile boolean parked;

        Parked(Thread thread) {
            this.thread = thread;
        }
    }
}
