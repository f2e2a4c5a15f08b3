package io.asyncctx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** The resume listener runs once, on the completing thread, only for a completion of a paused job. */
class AsyncJobResumeListenerTest {

    private final AsyncJobPool pool = new AsyncJobPool(4, Runnable::run);

    @Test
    void shouldRunOnTheCompletingThreadWhenAPausedJobCompletes() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        AtomicReference<Thread> thread = new AtomicReference<>();
        AsyncJob<String> job = new AsyncJob<>(pool, new AsyncWaitCtx(), j -> { });
        job.setResumeListener(() -> {
            calls.incrementAndGet();
            thread.set(Thread.currentThread());
        });
        assertEquals(AsyncStartResult.PAUSE, job.start());
        Thread engine = new Thread(() -> {
            job.complete("done");
            job.complete("again"); // a duplicate completion: dropped, no second call
        }, "engine");
        engine.start();
        engine.join(10_000);
        assertEquals(1, calls.get());
        assertEquals(engine, thread.get());
        assertEquals(AsyncStartResult.FINISH, job.resume());
        assertEquals("done", job.result());
    }

    @Test
    void shouldNotRunForACompletionWhileTheOperationRuns() {
        AtomicInteger calls = new AtomicInteger();
        AsyncJob<String> job = new AsyncJob<>(pool, new AsyncWaitCtx(), j -> j.complete("sync"));
        job.setResumeListener(calls::incrementAndGet);
        assertEquals(AsyncStartResult.FINISH, job.start());
        assertEquals(0, calls.get(), "start() finished the job itself: nobody needs waking");
    }

    @Test
    void shouldNotRunForAnAbandonedJob() {
        AtomicInteger calls = new AtomicInteger();
        AsyncJob<String> job = new AsyncJob<>(pool, new AsyncWaitCtx(), j -> { });
        job.setResumeListener(calls::incrementAndGet);
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertTrue(job.abandon());
        job.complete("late");
        assertEquals(0, calls.get());
    }

    @Test
    void shouldRefuseAListenerAfterStart() {
        AsyncJob<String> job = new AsyncJob<>(pool, new AsyncWaitCtx(), j -> { });
        job.start();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> job.setResumeListener(() -> { }));
        assertTrue(e.getMessage().contains("before start()"), e.getMessage());
    }
}
