package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SingleThreadIoEventLoop;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.RejectedExecutionHandlers;
import io.netty.util.concurrent.ThreadPerTaskExecutor;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link HandshakeTurns} on a real epoll loop: steps over the budget run oldest first, at most the budget per loop
 * iteration (each in a later turn than the one before with a budget of 1), a step that arrives while others wait
 * queues behind them, a step that throws does not stall the ones after it, a replay that finds nothing to do costs no
 * budget, and a loop that refuses the replay task (a full bounded queue) still runs every step, which can wait again.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class HandshakeTurnsTest {

    private EventLoopGroup group;
    private EventLoop loop;

    @BeforeEach
    void start() {
        group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        loop = group.next();
    }

    @AfterEach
    void stop() throws Exception {
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
    }

    @Test
    void shouldReplayWaitingStepsOldestFirstAtMostTheBudgetPerTurn() throws Exception {
        Queue<String> order = new ConcurrentLinkedQueue<>();
        HandshakeTurns turns = loop.submit(() -> HandshakeTurns.of(loop)).get();
        int n = 6;
        List<long[]> seen = new ArrayList<>();
        loop.submit(() -> {
            assertTrue(turns.admit(1), "the first step of a turn is admitted");
            assertFalse(turns.admit(1), "the second is over the budget of 1");
            for (int i = 0; i < n; i++) {
                int id = i;
                turns.defer(new HandshakeTurns.Step(1, () -> {
                    order.add("step" + id);
                    synchronized (seen) {
                        seen.add(new long[] {id, turns.turn()});
                    }
                    if (id == 2) {
                        throw new IllegalStateException("a step that throws (expected in this test)");
                    }
                    return true;
                }));
            }
            assertEquals(n, turns.waiting());
        }).sync();
        Loops.await("every waiting step ran", () -> order.size() == n);
        // A step that arrives while others wait is not admitted ahead of them.
        assertEquals(List.of("step0", "step1", "step2", "step3", "step4", "step5"), new ArrayList<>(order));
        synchronized (seen) {
            for (int i = 1; i < seen.size(); i++) {
                assertTrue(seen.get(i)[1] > seen.get(i - 1)[1], "budget 1: one step per turn, each in a later "
                        + "turn: step " + seen.get(i)[0] + " in turn " + seen.get(i)[1] + " after turn "
                        + seen.get(i - 1)[1]);
            }
        }
        long[] counts = loop.submit(turns::counts).get();
        assertEquals(1, counts[0], "admitted at once");
        assertEquals(n, counts[1], "deferred");
        assertEquals(n, counts[2], "replayed");
        assertEquals(0, counts[3], "skipped");
        assertEquals(0, (int) loop.submit(turns::waiting).get());
    }

    @Test
    void shouldNotChargeTheBudgetForAReplayThatFindsNothingToDo() throws Exception {
        HandshakeTurns turns = loop.submit(() -> HandshakeTurns.of(loop)).get();
        Map<String, Long> ranInTurn = new ConcurrentHashMap<>();
        loop.submit(() -> {
            assertTrue(turns.admit(1), "the first step of a turn is admitted");
            // Two steps whose channel closed (or whose job was abandoned) before their replay, then two live ones.
            for (String id : List.of("dead0", "dead1", "live0", "live1")) {
                turns.defer(new HandshakeTurns.Step(1, () -> {
                    ranInTurn.put(id, turns.turn());
                    return id.startsWith("live");
                }));
            }
        }).sync();
        Loops.await("every waiting step ran", () -> ranInTurn.size() == 4);
        long replayTurn = ranInTurn.get("dead0");
        assertEquals(replayTurn, ranInTurn.get("dead1").longValue(), "a replay with nothing to do costs no budget: "
                + ranInTurn);
        assertEquals(replayTurn, ranInTurn.get("live0").longValue(), "the first live step runs in the same turn as "
                + "the dead ones before it: " + ranInTurn);
        assertTrue(ranInTurn.get("live1") > replayTurn, "budget 1: the second live step in a later turn: " + ranInTurn);
        long[] counts = loop.submit(turns::counts).get();
        assertEquals(1, counts[0], "admitted at once");
        assertEquals(4, counts[1], "deferred");
        assertEquals(2, counts[2], "replayed with work done");
        assertEquals(2, counts[3], "skipped: nothing to do");
    }

    /** A task queue that refuses the loop thread's own offers while armed, as a full bounded queue does. */
    private static final class RefusingQueue extends ConcurrentLinkedQueue<Runnable> {
        volatile Thread refuseFrom;

        @Override
        public boolean offer(Runnable task) {
            return Thread.currentThread() != refuseFrom && super.offer(task);
        }
    }

    @Test
    void shouldReplayAtOnceWhenTheLoopRefusesTheReplayTask() throws Exception {
        RefusingQueue tasks = new RefusingQueue();
        SingleThreadIoEventLoop own = new SingleThreadIoEventLoop(null,
                new ThreadPerTaskExecutor(new DefaultThreadFactory("turns-refusing")), EpollIoHandler.newFactory(),
                tasks, new ConcurrentLinkedQueue<>(), RejectedExecutionHandlers.reject()) {
        };
        try {
            HandshakeTurns turns = own.submit(() -> HandshakeTurns.of(own)).get();
            AtomicInteger a = new AtomicInteger();
            AtomicInteger b = new AtomicInteger();
            HandshakeTurns.Step stepA = new HandshakeTurns.Step(1, () -> a.incrementAndGet() > 0);
            HandshakeTurns.Step stepB = new HandshakeTurns.Step(1, () -> b.incrementAndGet() > 0);
            own.submit(() -> {
                // Tail tasks run in order: arm, the end of this turn (its replay task is refused), disarm.
                own.executeAfterEventLoopIteration(() -> tasks.refuseFrom = Thread.currentThread());
                assertTrue(turns.admit(1), "the first step of a turn is admitted");
                own.executeAfterEventLoopIteration(() -> tasks.refuseFrom = null);
                turns.defer(stepA);
                turns.defer(stepB);
            }).sync();
            Loops.await("both steps ran although the loop refused the replay task",
                    () -> a.get() == 1 && b.get() == 1);
            // Neither step is left marked as queued: both can wait again, and run again.
            own.submit(() -> {
                assertTrue(turns.admit(1));
                turns.defer(stepA);
                turns.defer(stepB);
            }).sync();
            Loops.await("both steps ran again", () -> a.get() == 2 && b.get() == 2);
            long[] counts = own.submit(turns::counts).get();
            assertEquals(4, counts[1], "deferred");
            assertEquals(4, counts[2], "replayed");
            assertEquals(0, (int) own.submit(turns::waiting).get());
        } finally {
            own.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        }
    }

    @Test
    void shouldAdmitTheBudgetInEveryTurnWhenNothingWaits() throws Exception {
        HandshakeTurns turns = loop.submit(() -> HandshakeTurns.of(loop)).get();
        boolean[] first = loop.submit(() -> new boolean[] {turns.admit(2), turns.admit(2), turns.admit(2)}).get();
        assertTrue(first[0] && first[1] && !first[2], "two of three in one turn with a budget of 2");
        // Once the end-of-iteration task has ended that turn, any later task runs in a later iteration.
        Loops.await("the turn ended", () -> {
            try {
                return loop.submit(turns::turn).get() > 0;
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        boolean again = loop.submit(() -> turns.admit(2)).get();
        assertTrue(again, "a new turn has its budget again");
    }
}
