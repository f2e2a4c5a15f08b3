package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.netty.Loops.Transport;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@link OperationTimers} on a real epoll loop: the backoff sequence, the retry bound, cancellation by order. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class OperationTimersTest {

    private final MultiThreadIoEventLoopGroup group = Loops.group(Transport.EPOLL, 1);
    private final IoEventLoop loop = (IoEventLoop) group.next();

    @AfterEach
    void tearDown() throws InterruptedException {
        Loops.shutdown(group);
    }

    private static OffloadConfig config(long timeoutMillis, int maxRetries) {
        return OffloadConfig.builder().operationTimeout(Duration.ofMillis(timeoutMillis))
                .eagainInitialBackoff(Duration.ofMillis(1)).eagainMaxBackoff(Duration.ofMillis(8))
                .eagainMaxRetries(maxRetries).build();
    }

    @Test
    void shouldDoubleTheBackoffUpToItsCap() {
        OperationTimers t = new OperationTimers(loop, config(0, 10));
        long ms = TimeUnit.MILLISECONDS.toNanos(1);
        assertEquals(List.of(ms, 2 * ms, 4 * ms, 8 * ms, 8 * ms, 8 * ms),
                List.of(t.backoffNanos(0), t.backoffNanos(1), t.backoffNanos(2), t.backoffNanos(3), t.backoffNanos(4),
                        t.backoffNanos(40)));
    }

    @Test
    void shouldRunRetriesInOrderAndStopAtTheBound() throws Exception {
        OperationTimers t = new OperationTimers(loop, config(0, 3));
        List<Integer> ran = new CopyOnWriteArrayList<>();
        Loops.onLoop(loop, () -> {
            assertFalse(t.isArmed(), "no deadline when the timeout is 0");
            t.startDeadline(() -> ran.add(-1));
            assertFalse(t.isArmed());
        });
        for (int i = 0; i < 3; i++) {
            int k = i;
            Loops.onLoop(loop, () -> {
                assertFalse(t.retriesExhausted());
                t.scheduleRetry(() -> {
                    t.retryRan();
                    ran.add(k);
                });
            });
            Loops.await("retry " + k + " ran", () -> ran.size() == k + 1);
        }
        assertEquals(List.of(0, 1, 2), ran);
        assertTrue(Loops.onLoop(loop, t::retriesExhausted));
        Loops.onLoop(loop, t::newAttempt);
        assertEquals(0, (int) Loops.onLoop(loop, t::retries), "a new attempt counts its retries from zero");
        assertFalse(Loops.onLoop(loop, t::retriesExhausted));
    }

    /** Cancelled timers never run: a marker scheduled after both runs, and they have not (order, not time). */
    @Test
    void shouldCancelDeadlineAndRetryWhenTheOperationEnds() throws Exception {
        OperationTimers t = new OperationTimers(loop, config(5, 3));
        List<String> ran = new CopyOnWriteArrayList<>();
        Loops.onLoop(loop, () -> {
            t.startDeadline(() -> ran.add("deadline"));
            t.scheduleRetry(() -> ran.add("retry")); // 1 ms
            assertTrue(t.isArmed());
            t.cancel();
            assertFalse(t.isArmed());
            assertEquals(0, t.retries());
            loop.schedule(() -> ran.add("marker"), 20, TimeUnit.MILLISECONDS);
        });
        Loops.await("marker ran", () -> ran.contains("marker"));
        assertEquals(List.of("marker"), ran);
    }

    @Test
    void shouldFireTheDeadlineOnTheLoop() throws Exception {
        OperationTimers t = new OperationTimers(loop, config(1, 3));
        List<Boolean> inLoop = new CopyOnWriteArrayList<>();
        Loops.onLoop(loop, () -> t.startDeadline(() -> {
            t.deadlinePassed();
            inLoop.add(loop.inEventLoop());
        }));
        Loops.await("deadline fired", () -> !inLoop.isEmpty());
        assertEquals(List.of(true), inLoop);
        assertFalse(Loops.onLoop(loop, t::isArmed));
    }
}
