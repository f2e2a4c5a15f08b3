package io.asyncctx.testkit;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * Waits in a test until a condition holds, bounded: the one condition wait of this project's tests (and of yours),
 * instead of a sleep for a guessed time. The condition is checked at once and then every millisecond; past the
 * timeout the wait fails with an {@link AssertionError} that says what was awaited.
 *
 * <p>Threading: any test thread; it blocks the caller, so never call it on an event loop (check the condition there
 * with a task, as the tests' {@code onLoop} helpers do).
 */
public final class Await {

    private static final long POLL_NANOS = 1_000_000;

    private Await() {
    }

    /** Waits up to {@code timeout} until {@code condition} holds; fails naming {@code what}. */
    public static void until(String what, Duration timeout, BooleanSupplier condition) throws InterruptedException {
        Objects.requireNonNull(what, "what");
        until(() -> "timed out after " + timeout + " waiting for: " + what, timeout, condition);
    }

    /** Waits up to {@code timeout} until {@code condition} holds; fails with the message {@code why} gives then. */
    public static void until(Supplier<String> why, Duration timeout, BooleanSupplier condition)
            throws InterruptedException {
        Objects.requireNonNull(why, "why");
        Objects.requireNonNull(condition, "condition");
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError(why.get());
            }
            LockSupport.parkNanos(POLL_NANOS);
            if (Thread.interrupted()) {
                throw new InterruptedException("interrupted waiting: " + why.get());
            }
        }
    }
}
