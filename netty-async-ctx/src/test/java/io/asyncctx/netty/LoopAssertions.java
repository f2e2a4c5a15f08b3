package io.asyncctx.netty;

import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Collects assertion failures (and any other throwable) raised on event-loop or engine threads, where a failed
 * assertion would only be logged and show up as a timeout, and rethrows them on the test thread.
 *
 * <p>Threading: {@link #run} on any thread; {@link #rethrow()} on the test thread.
 */
final class LoopAssertions {

    private final ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();

    /** Runs {@code body}, keeping what it throws; then runs {@code always} (a latch count-down) in any case. */
    void run(Runnable body, Runnable always) {
        try {
            body.run();
        } catch (Throwable t) {
            failures.add(t);
        } finally {
            always.run();
        }
    }

    /** Throws the first failure collected so far (the others suppressed in it), if any. Test thread. */
    void rethrow() {
        Throwable first = failures.poll();
        if (first == null) {
            return;
        }
        AssertionError e = new AssertionError("failed on a loop or engine thread: " + first, first);
        for (Throwable t; (t = failures.poll()) != null; ) {
            e.addSuppressed(t);
        }
        throw e;
    }
}
