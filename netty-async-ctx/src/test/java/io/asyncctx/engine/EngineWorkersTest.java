package io.asyncctx.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The shared worker pool's hand-off: lock-free submit, last-parked-first-woken idle workers, bound, close. */
class EngineWorkersTest {

    private EngineWorkers pool;

    private EngineWorkers pool(int workers, int capacity) {
        pool = new EngineWorkers("test", "engine-workers-test-", workers, capacity, () -> op -> new byte[0]);
        pool.start();
        return pool;
    }

    @AfterEach
    void closePool() {
        assertTrue(pool.close(5_000), "workers ended");
        assertEquals(0, pool.liveWorkers());
    }

    @Test
    void aTrickleOfTasksIsDoneByTheWorkerThatParkedLast() throws Exception {
        EngineWorkers pool = pool(3, 16);
        awaitAllParked();
        Set<String> threads = ConcurrentHashMap.newKeySet();
        for (int i = 0; i < 50; i++) {
            CountDownLatch done = new CountDownLatch(1);
            assertTrue(pool.execute(() -> {
                threads.add(Thread.currentThread().getName());
                done.countDown();
            }));
            assertTrue(done.await(10, TimeUnit.SECONDS));
            awaitAllParked();
        }
        // one at a time, each after every worker parked: the last to park is the first woken, so one thread
        // does them all (a FIFO of waiters, as in a lock-and-condition queue, rotates through all three)
        assertEquals(1, threads.size(), "threads used: " + threads);
        assertEquals(50, pool.wakeups());
    }

    @Test
    void manySubmittersLoseNoTaskAndWakeAtMostOneWorkerPerSubmit() throws Exception {
        EngineWorkers pool = pool(2, 100_000);
        int submitters = 4;
        int each = 20_000;
        AtomicInteger ran = new AtomicInteger();
        CountDownLatch all = new CountDownLatch(submitters * each);
        List<Thread> threads = new ArrayList<>();
        for (int s = 0; s < submitters; s++) {
            Thread t = new Thread(() -> {
                for (int i = 0; i < each; i++) {
                    while (!pool.execute(() -> {
                        ran.incrementAndGet();
                        all.countDown();
                    })) {
                        Thread.onSpinWait(); // full: the workers drain it
                    }
                }
            });
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) {
            t.join(60_000);
        }
        assertTrue(all.await(60, TimeUnit.SECONDS), "tasks run: " + ran.get() + " of " + submitters * each);
        assertEquals(submitters * each, ran.get());
        assertTrue(pool.wakeups() <= (long) submitters * each, "wake-ups: " + pool.wakeups());
        assertEquals(0, pool.queued()); // a task leaves the count when a worker takes it, before it runs
    }

    @Test
    void aFullQueueRefusesWithoutBlockingAndAFreedSlotIsUsable() throws Exception {
        EngineWorkers pool = pool(1, 2);
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch queuedRan = new CountDownLatch(2);
        try {
            assertTrue(pool.execute(() -> {
                started.countDown();
                awaitQuietly(release);
            }));
            assertTrue(started.await(10, TimeUnit.SECONDS));
            assertTrue(pool.execute(queuedRan::countDown));
            assertTrue(pool.execute(queuedRan::countDown));
            assertFalse(pool.execute(() -> { }), "a third queued item over a capacity of 2");
            assertEquals(2, pool.queued());
            release.countDown();
            assertTrue(queuedRan.await(10, TimeUnit.SECONDS));
            assertEquals(0, pool.queued());
            CountDownLatch after = new CountDownLatch(1);
            assertTrue(pool.execute(after::countDown));
            assertTrue(after.await(10, TimeUnit.SECONDS));
        } finally {
            release.countDown();
        }
    }

    @Test
    void closeEndsParkedWorkersAndDropsWhatIsQueued() throws Exception {
        EngineWorkers pool = pool(2, 8);
        CountDownLatch started = new CountDownLatch(2);
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger ranAfter = new AtomicInteger();
        assertTrue(pool.execute(() -> {
            started.countDown();
            awaitQuietly(release);
        }));
        assertTrue(pool.execute(() -> {
            started.countDown();
            awaitQuietly(release);
        }));
        assertTrue(started.await(10, TimeUnit.SECONDS));
        assertTrue(pool.execute(ranAfter::incrementAndGet));
        release.countDown();
        assertTrue(pool.close(5_000), "workers ended");
        assertEquals(0, pool.liveWorkers());
        assertEquals(0, pool.queued());
        assertFalse(pool.execute(ranAfter::incrementAndGet), "closed: refused");
        assertTrue(ranAfter.get() <= 1, "a task queued before close ran at most once: " + ranAfter.get());
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Awaits, with a 10 s timeout, every worker thread of the pool being parked. A thread's state changes without an
     * event to wait on, so this yields between looks (no sleep).
     */
    private static void awaitAllParked() {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("engine-workers-test-") && t.isAlive())
                .allMatch(t -> t.getState() == Thread.State.WAITING)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the workers did not all park in 10 s");
            }
            Thread.yield();
        }
    }
}
