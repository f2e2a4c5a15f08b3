package io.asyncctx.netty;

import io.asyncctx.AsyncStatus;
import io.asyncctx.engine.AbstractAsyncEngine;
import io.asyncctx.engine.PendingOperation;

import java.security.PublicKey;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A test engine: completes operations from its own thread after a delay, or on demand from the test's thread;
 * can answer EAGAIN a number of times, report ERR, or complete before the job pauses.
 *
 * <p>Threading: thread-safe; offer/cancel on the loop, completions on the engine's thread or the caller's.
 */
final class TestEngine extends AbstractAsyncEngine {

    enum Behaviour {
        /** Keep the operation until {@link #completeAll()} or {@link #pending()} is used. */
        ON_DEMAND,
        /** Complete on the engine's thread after {@code delayMicros} (random up to it when {@code randomDelay}). */
        DELAYED,
        /** Complete inside offer, before the job pauses. */
        SYNC,
        /** Set status ERR inside offer. */
        ERR,
        /** Fail the operation on the engine's thread. */
        FAIL_LATER
    }

    final AtomicInteger offers = new AtomicInteger();
    final AtomicInteger refusals = new AtomicInteger();
    final AtomicInteger cancels = new AtomicInteger();
    final AtomicInteger completions = new AtomicInteger();
    private final ConcurrentLinkedQueue<PendingOperation> pending = new ConcurrentLinkedQueue<>();
    private final ScheduledExecutorService thread = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "test-engine");
        t.setDaemon(true);
        return t;
    });

    volatile Behaviour behaviour = Behaviour.DELAYED;
    volatile long delayMicros = 1000;
    volatile boolean randomDelay;
    /** Offers to refuse (EAGAIN) before taking one; -1 refuses forever. */
    final AtomicInteger refuseNext = new AtomicInteger();

    TestEngine(FdMode mode) {
        super("test-engine", mode);
    }

    static byte[] expected(byte[] input) {
        byte[] out = new byte[input.length + 1];
        out[0] = 42;
        System.arraycopy(input, 0, out, 1, input.length);
        return out;
    }

    @Override
    public PublicKey publicKey() {
        return null;
    }

    @Override
    protected boolean offer(PendingOperation op) {
        offers.incrementAndGet();
        int refuse = refuseNext.get();
        if (refuse < 0 || (refuse > 0 && refuseNext.compareAndSet(refuse, refuse - 1))) {
            refusals.incrementAndGet();
            return false;
        }
        switch (behaviour) {
            case SYNC -> complete(op);
            case ERR -> op.job().waitCtx().setStatus(AsyncStatus.ERR);
            case ON_DEMAND -> pending.add(op);
            case DELAYED -> {
                long d = randomDelay ? ThreadLocalRandom.current().nextLong(delayMicros + 1) : delayMicros;
                thread.schedule(() -> complete(op), d, TimeUnit.MICROSECONDS);
            }
            case FAIL_LATER -> thread.execute(() -> op.fail(new java.io.IOException("test engine failure")));
            default -> throw new AssertionError();
        }
        return true;
    }

    @Override
    protected void cancel(PendingOperation op) {
        cancels.incrementAndGet();
    }

    private void complete(PendingOperation op) {
        completions.incrementAndGet();
        op.complete(expected(op.operation().input()));
    }

    /** The operations kept in ON_DEMAND mode, removed from the engine. */
    List<PendingOperation> takePending() {
        List<PendingOperation> out = new ArrayList<>();
        PendingOperation op;
        while ((op = pending.poll()) != null) {
            out.add(op);
        }
        return out;
    }

    int pendingCount() {
        return pending.size();
    }

    /** Completes every kept operation on the caller's thread. */
    int completeAll() {
        List<PendingOperation> ops = takePending();
        ops.forEach(this::complete);
        return ops.size();
    }

    @Override
    public void close() {
        thread.shutdownNow();
        try {
            thread.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        super.close();
    }
}
