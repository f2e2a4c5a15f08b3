package io.asyncctx;

import java.util.ArrayDeque;
import java.util.concurrent.Executor;

/**
 * A test owner executor: tasks are queued and run only when the test pumps them, on the test's own thread. Lets a test
 * prove that something was handed to the owner executor rather than run inline.
 *
 * <p>Threading: not thread-safe; the test thread is the owner.
 */
final class PumpedExecutor implements Executor {

    private final ArrayDeque<Runnable> tasks = new ArrayDeque<>();
    private int executed;

    @Override
    public void execute(Runnable task) {
        tasks.addLast(task);
    }

    /** Runs queued tasks, including tasks they queue, until none is left; returns how many ran. */
    int runAll() {
        int n = 0;
        Runnable t;
        while ((t = tasks.pollFirst()) != null) {
            t.run();
            n++;
            executed++;
        }
        return n;
    }

    /** Tasks queued and not run yet. */
    int pending() {
        return tasks.size();
    }

    /** Tasks run so far. */
    int executed() {
        return executed;
    }
}
