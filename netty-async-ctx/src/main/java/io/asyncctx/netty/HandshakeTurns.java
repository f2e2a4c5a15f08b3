package io.asyncctx.netty;

import io.netty.channel.SingleThreadEventLoop;

import java.util.ArrayDeque;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.BooleanSupplier;

/**
 * The handshake budget of one event loop's turns ({@link OffloadConfig#handshakeStepsPerLoopTurn()}): how many
 * handshake steps (an inbound read of a handshaking channel, or the resume of a completed key operation from a wait
 * fd) the loop has run in its current iteration, and the steps over budget that wait, oldest first.
 *
 * <p>How a turn is delimited. Netty 4.2.18's {@code SingleThreadIoEventLoop.run()} repeats: {@code runIo()} (one
 * epoll/io_uring pass over the ready handles; it does not block while any task, tail task or due scheduled task is
 * pending), then {@code runAllTasks(quantum)}, which polls the task queue until it is empty (tasks added meanwhile
 * run in the same pass) and ends with the tail tasks of {@code executeAfterEventLoopIteration}. The first step of a
 * turn queues a tail task; it ends the turn (the count goes back to 0) and, when steps wait, queues one ordinary task
 * that replays them: that task runs in the next iteration, after its I/O pass, so the reads of established connections
 * that arrived meanwhile are served before the next steps. Each replay runs at most the budget and, while steps still
 * wait, the next turn replays again; a step that arrives while others wait queues behind them (first come, first
 * served). The loop never blocks or sleeps for this: a turn with waiting steps polls I/O without blocking and goes on.
 * If the loop refuses the replay task while it is not shutting down (a bounded task queue that is full), the replay runs
 * at once, at the end of the iteration, so that no step waits for good; when the loop shuts down, the waiting steps are
 * dropped (their channels close and release what they kept). A replay that finds nothing to do costs no budget.
 *
 * <p>Several contexts on one loop may set different budgets: each step is admitted against its own connection's
 * budget, counted in the one per-loop total.
 *
 * <p><b>Threading.</b> Not thread-safe: every method runs on the loop's thread.
 */
final class HandshakeTurns {

    /**
     * A step over budget, kept to be run later. One instance per channel or connection, reused. Its replay returns
     * whether it did handshake work: a replay that finds nothing to do (its channel closed, its handler removed, its
     * job abandoned) costs no budget and is counted as skipped.
     */
    static final class Step {
        final int limit;
        final BooleanSupplier replay;
        boolean queued;

        Step(int limit, BooleanSupplier replay) {
            this.limit = limit;
            this.replay = replay;
        }
    }

    private final SingleThreadEventLoop loop;
    private final ArrayDeque<Step> waiting = new ArrayDeque<>();
    private final Runnable endOfTurn = this::endOfTurn;
    private final Runnable replay = this::replay;
    private int used;
    private long turn;
    private boolean tailQueued;
    private boolean replayQueued;
    // Counters for tests and metrics: loop thread only.
    private long admitted;
    private long deferred;
    private long replayed;
    private long skipped;

    private HandshakeTurns(SingleThreadEventLoop loop) {
        this.loop = loop;
    }

    /** The budget keeper of {@code loop}, or null when the loop has no end-of-iteration hook (then nothing is bounded). */
    static HandshakeTurns of(Object loop) {
        return loop instanceof SingleThreadEventLoop l ? new HandshakeTurns(l) : null;
    }

    /** The current turn's number: it changes when a turn in which a step ran or waited has ended. */
    long turn() {
        return turn;
    }

    /**
     * Admits one step now when the turn has budget left under {@code limit} and no older step waits; otherwise the
     * caller keeps the step and passes it to {@link #defer}.
     */
    boolean admit(int limit) {
        queueEndOfTurn();
        if (!waiting.isEmpty() || used >= limit) {
            return false;
        }
        used++;
        admitted++;
        return true;
    }

    /** Queues {@code step} (once) to be replayed in a later turn, after that turn's I/O pass. */
    void defer(Step step) {
        if (step.queued) {
            return;
        }
        step.queued = true;
        waiting.add(step);
        deferred++;
        queueEndOfTurn();
    }

    /** Steps waiting for a later turn. */
    int waiting() {
        return waiting.size();
    }

    /**
     * Steps admitted at once, deferred, replayed later with work done, and replayed later with nothing to do (loop
     * thread; for tests). Every deferred step is eventually replayed or skipped, or dropped when the loop shuts down.
     */
    long[] counts() {
        return new long[] {admitted, deferred, replayed, skipped};
    }

    private void queueEndOfTurn() {
        if (!tailQueued) {
            tailQueued = true;
            try {
                loop.executeAfterEventLoopIteration(endOfTurn);
            } catch (RejectedExecutionException e) {
                tailQueued = false; // when shutting down, the channels close and drop what they kept
                if (!loop.isShuttingDown()) {
                    // The tail-task queue is full (a bounded queue): end the turn with an ordinary task instead.
                    try {
                        loop.execute(endOfTurn);
                        tailQueued = true;
                    } catch (RejectedExecutionException full) {
                        // Both queues full: the next step of this loop tries again.
                    }
                }
            }
        }
    }

    private void endOfTurn() {
        tailQueued = false;
        used = 0;
        turn++;
        if (!waiting.isEmpty() && !replayQueued) {
            replayQueued = true;
            try {
                // An ordinary task: it runs in the next iteration, after that iteration's I/O pass.
                loop.execute(replay);
            } catch (RejectedExecutionException e) {
                replayQueued = false;
                if (loop.isShuttingDown()) {
                    // Every channel closes and releases what it kept; a connection's close abandons its job.
                    for (Step s; (s = waiting.poll()) != null; ) {
                        s.queued = false;
                    }
                } else {
                    // The task queue is full (a bounded queue): replay now, at the end of this iteration, rather than
                    // leave the steps (and their channels' reads) waiting for good. The bound is kept; the I/O pass
                    // between the turns is lost for this one.
                    replay();
                }
            }
        }
    }

    private void replay() {
        replayQueued = false;
        try {
            for (Step s; (s = waiting.peek()) != null && used < s.limit; ) {
                waiting.poll();
                s.queued = false;
                used++; // charged before it runs, as an admitted step is; refunded when it had nothing to do
                boolean worked = true; // a step that throws counts as work done
                try {
                    worked = s.replay.getAsBoolean();
                } finally {
                    if (worked) {
                        replayed++;
                    } else {
                        used--;
                        skipped++;
                    }
                }
            }
        } finally {
            // Even if a step threw: end this turn, and replay what still waits in the next one.
            queueEndOfTurn();
        }
    }

    @Override
    public String toString() {
        return "HandshakeTurns[used=" + used + ", waiting=" + waiting.size() + ", turn=" + turn + ']';
    }
}
