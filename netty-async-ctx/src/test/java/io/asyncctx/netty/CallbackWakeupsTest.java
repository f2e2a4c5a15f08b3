package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayDeque;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import org.junit.jupiter.api.Test;

/**
 * {@link CallbackWakeups} driven by hand: a queue executor stands in for the loop, so every interleaving of callbacks,
 * completions and tasks is scripted.
 */
class CallbackWakeupsTest {

    private final ArrayDeque<Runnable> tasks = new ArrayDeque<>();
    private boolean rejecting;
    private final Executor loop = r -> {
        if (rejecting) {
            throw new RejectedExecutionException("shutting down");
        }
        tasks.add(r);
    };
    private boolean closed;
    private int completionsPending;
    private int resumes;
    private int spurious;
    private final CallbackWakeups w = new CallbackWakeups(loop, () -> closed, () -> {
        if (completionsPending == 0) {
            return false;
        }
        completionsPending--;
        resumes++;
        return true;
    }, () -> spurious++);

    private void runTasks() {
        for (Runnable r; (r = tasks.poll()) != null; ) {
            r.run();
        }
    }

    @Test
    void shouldQueueOneTaskForManyCallbacks() {
        completionsPending = 1;
        assertEquals(1, w.onCallback());
        assertEquals(1, w.onCallback());
        assertEquals(1, w.onCallback());
        assertEquals(1, tasks.size(), "one task however many callbacks");
        runTasks();
        assertEquals(1, resumes);
        assertEquals(0, spurious, "a task that resumed is not spurious, whatever the number of callbacks");
        assertEquals(1, w.onCallback());
        assertEquals(1, tasks.size(), "a callback after the task ran queues a new one");
    }

    @Test
    void shouldCountACallbackWithNoCompletionAsSpurious() {
        w.onCallback();
        runTasks();
        assertEquals(0, resumes);
        assertEquals(1, spurious);
    }

    @Test
    void shouldNotCountTheLateCallbackOfAJobThatFinishedBeforeItPaused() {
        w.expectLateCallback(); // the job finished inside start(); its engine calls back afterwards
        w.onCallback();
        runTasks();
        assertEquals(0, spurious);
        w.onCallback(); // a second one has no completion behind it
        runTasks();
        assertEquals(1, spurious);
    }

    @Test
    void shouldNotCountTheCallbackOfACompletionAnEarlierTaskTook() {
        // Job 1 finished before it paused; job 2 paused. Job 1's late callback queues a task; job 2 completes before
        // the task runs, so the task takes job 2's completion before job 2's own callback has counted.
        w.expectLateCallback();
        w.onCallback();
        completionsPending = 1;
        runTasks();
        assertEquals(1, resumes);
        w.onCallback(); // job 2's callback: owed, not spurious
        runTasks();
        assertEquals(0, spurious);
        w.onCallback(); // nothing behind this one
        runTasks();
        assertEquals(1, spurious);
    }

    /** Counts are exact over a whole sequence: callbacks minus completions taken, whatever the task boundaries. */
    @Test
    void shouldCountOneSpuriousForOneExtraCallbackWhateverTheOrder() {
        w.onCallback(); // spurious: no completion behind it
        completionsPending = 1; // a completion arrives before the task runs; its callback comes after
        runTasks();
        w.onCallback();
        runTasks();
        assertEquals(1, resumes);
        assertEquals(1, spurious, "two callbacks, one completion");
    }

    @Test
    void shouldCountNothingAfterClose() {
        w.onCallback();
        closed = true;
        runTasks();
        assertEquals(0, spurious);
        assertEquals(0, resumes);
    }

    @Test
    void shouldAnswerZeroWhenTheLoopRefusesAndRecoverAfterwards() {
        rejecting = true;
        assertEquals(0, w.onCallback());
        rejecting = false;
        completionsPending = 1;
        assertEquals(1, w.onCallback());
        runTasks();
        assertEquals(1, resumes);
    }
}
