package io.asyncctx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link AsyncJob}: the life cycle of ASYNC_start_job, with a real engine thread completing jobs while the test thread
 * is the owner.
 */
class AsyncJobTest {

    private final PumpedExecutor owner = new PumpedExecutor();
    private final AsyncJobPool pool = new AsyncJobPool(2, owner);
    private final AsyncWaitCtx ctx = new AsyncWaitCtx();
    private final ExecutorService engine = Executors.newSingleThreadExecutor(r -> new Thread(r, "test-engine"));

    @AfterEach
    void tearDown() throws InterruptedException {
        engine.shutdownNow();
        assertTrue(engine.awaitTermination(5, TimeUnit.SECONDS), "engine thread did not stop");
        ctx.close();
    }

    /** An operation that does nothing: the engine "has" the job, the test completes it. */
    private static <T> AsyncOperation<T> handedOff() {
        return job -> { };
    }

    private void assertReleased(AsyncJob<?> job) {
        assertTrue(job.isDone());
        assertEquals(0, pool.inFlight(), "the job's slot is released");
        assertNull(ctx.currentJob(), "the job's ctx is released");
    }

    @Test
    @Timeout(10)
    void shouldFinishWithResultWhenCompletedFromEngineThreadAndSignalledThroughCallback() throws Exception {
        LinkedBlockingQueue<Object> resumeRequests = new LinkedBlockingQueue<>();
        Object connection = new Object();
        ctx.setCallback(arg -> resumeRequests.offer(arg) ? 1 : 0, connection);
        CountDownLatch paused = new CountDownLatch(1);
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, j -> {
            AsyncWaitCtx.CallbackBinding binding = j.waitCtx().getCallbackBinding();
            j.waitCtx().setStatus(AsyncStatus.OK);
            engine.execute(() -> {
                try {
                    if (!paused.await(5, TimeUnit.SECONDS)) {
                        return;
                    }
                } catch (InterruptedException e) {
                    return;
                }
                if (j.complete("signature")) {
                    binding.call();
                }
            });
        });

        AsyncStartResult first = job.start();
        assertEquals(AsyncStartResult.PAUSE, first);
        assertSame(job, ctx.currentJob());
        assertEquals(1, pool.inFlight());
        assertEquals(AsyncJob.State.PAUSED, job.state());
        paused.countDown();

        Object arg = resumeRequests.poll(5, TimeUnit.SECONDS);
        assertSame(connection, arg, "the engine called the callback with the ctx's argument");
        assertTrue(job.isCompletionPending());
        assertEquals(AsyncJob.State.RESUMING, job.state());

        assertEquals(AsyncStartResult.FINISH, job.resume());
        assertEquals(AsyncJob.State.FINISHED, job.state());
        assertEquals("signature", job.result());
        assertNull(job.failure());
        assertEquals(1, job.runs());
        assertReleased(job);
    }

    @Test
    @Timeout(10)
    void shouldEndWithErrAndCauseWhenFailedFromEngineThread() throws Exception {
        IllegalStateException cause = new IllegalStateException("token removed");
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, handedOff());
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertTrue(engine.submit(() -> job.fail(cause)).get(5, TimeUnit.SECONDS));

        assertEquals(AsyncStartResult.ERR, job.resume());
        assertEquals(AsyncJob.State.FINISHED, job.state());
        assertSame(cause, job.failure());
        IllegalStateException e = assertThrows(IllegalStateException.class, job::result);
        assertTrue(e.getMessage().contains("failed"), e.getMessage());
        assertReleased(job);
    }

    @Test
    void shouldFinishFromStartWhenOperationCompletesSynchronously() {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, j -> assertTrue(j.complete("inline")));
        assertEquals(AsyncStartResult.FINISH, job.start());
        assertEquals("inline", job.result());
        assertReleased(job);
    }

    @Test
    void shouldFinishWithNullResult() {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, handedOff());
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertTrue(job.complete(null));
        assertEquals(AsyncStartResult.FINISH, job.resume());
        assertNull(job.result());
        assertNull(job.failure());
    }

    @Test
    @Timeout(10)
    void shouldFinishFromStartWhenEngineCompletesBeforeOperationReturns() throws Exception {
        CountDownLatch completed = new CountDownLatch(1);
        AtomicReference<Boolean> accepted = new AtomicReference<>();
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, j -> {
            engine.execute(() -> {
                accepted.set(j.complete("early"));
                completed.countDown();
            });
            // The engine completes on its own thread while run() is still executing.
            if (!completed.await(5, TimeUnit.SECONDS)) {
                throw new AssertionError("the engine did not complete in time");
            }
            assertEquals(AsyncJob.State.RESUMING, j.state(), "completion arrived before the pause");
        });
        assertEquals(AsyncStartResult.FINISH, job.start());
        assertEquals(Boolean.TRUE, accepted.get());
        assertEquals("early", job.result());
        assertReleased(job);
    }

    @Test
    void shouldStayPausedOnSpuriousResume() {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, handedOff());
        assertEquals(AsyncStartResult.PAUSE, job.start());
        for (int i = 0; i < 3; i++) {
            assertEquals(AsyncStartResult.PAUSE, job.resume());
            assertEquals(AsyncJob.State.PAUSED, job.state());
        }
        assertEquals(1, job.runs(), "a spurious resume does not re-run the operation");
        assertEquals(1, pool.inFlight());
        assertSame(job, ctx.currentJob());

        assertTrue(job.complete("late but fine"));
        assertEquals(AsyncStartResult.FINISH, job.resume());
        assertEquals("late but fine", job.result());
    }

    @Test
    void shouldRerunOperationOnResumeAfterEagainAndFinishOnLaterSuccess() {
        List<AsyncStatus> statusSeenAtRunStart = new ArrayList<>();
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, j -> {
            statusSeenAtRunStart.add(j.waitCtx().getStatus());
            if (j.runs() < 3) {
                j.waitCtx().setStatus(AsyncStatus.EAGAIN); // the engine's queue is full
            }
        });
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertEquals(1, job.runs());
        assertEquals(AsyncStatus.EAGAIN, ctx.getStatus());

        assertEquals(AsyncStartResult.PAUSE, job.resume());
        assertEquals(2, job.runs());
        assertEquals(AsyncStartResult.PAUSE, job.resume());
        assertEquals(3, job.runs());
        assertEquals(AsyncStatus.UNSUPPORTED, ctx.getStatus(), "the third run was taken");

        assertEquals(AsyncStartResult.PAUSE, job.resume(), "taken: a resume without completion is spurious now");
        assertEquals(3, job.runs());

        assertTrue(job.complete("after retries"));
        assertEquals(AsyncStartResult.FINISH, job.resume());
        assertEquals("after retries", job.result());
        assertEquals(List.of(AsyncStatus.UNSUPPORTED, AsyncStatus.UNSUPPORTED, AsyncStatus.UNSUPPORTED),
                statusSeenAtRunStart, "the status is reset before every run, so an old EAGAIN is never read twice");
        assertReleased(job);
    }

    @Test
    void shouldTakeCompletionThatArrivesDespiteEagain() {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, j -> j.waitCtx().setStatus(AsyncStatus.EAGAIN));
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertTrue(job.complete("anyway"));
        assertEquals(AsyncStartResult.FINISH, job.resume());
        assertEquals(1, job.runs(), "no retry when the result is already there");
        assertEquals("anyway", job.result());
    }

    @Test
    void shouldEndWithErrAndEngineExceptionWhenEngineSetsErrStatus() {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, j -> j.waitCtx().setStatus(AsyncStatus.ERR));
        assertEquals(AsyncStartResult.ERR, job.start());
        AsyncEngineException e = assertInstanceOf(AsyncEngineException.class, job.failure());
        assertTrue(e.getMessage().contains("ERR"), e.getMessage());
        assertReleased(job);
    }

    @Test
    void shouldEndWithErrAndTheThrownExceptionWhenOperationThrows() {
        Exception thrown = new java.io.IOException("engine unreachable");
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, j -> {
            throw thrown;
        });
        assertEquals(AsyncStartResult.ERR, job.start());
        assertSame(thrown, job.failure());
        assertReleased(job);
    }

    @Test
    void shouldKeepFirstCompletionAndRejectLaterOnes() {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, handedOff());
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertTrue(job.complete("first"));
        assertFalse(job.complete("second"));
        assertFalse(job.fail(new RuntimeException("third")));
        assertEquals(AsyncStartResult.FINISH, job.resume());
        assertEquals("first", job.result());
        assertFalse(job.complete("after finish"));
        assertEquals("first", job.result());
    }

    @Test
    @Timeout(10)
    void shouldReleaseSlotAndCtxOnAbandonAndDropLateCompletion() throws Exception {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, handedOff());
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertEquals(1, pool.inFlight());

        assertTrue(job.abandon());
        assertEquals(AsyncJob.State.ABANDONED, job.state());
        assertReleased(job);
        assertFalse(job.abandon(), "abandon of an ended job");

        assertFalse(engine.submit(() -> job.complete("too late")).get(5, TimeUnit.SECONDS));
        assertFalse(engine.submit(() -> job.fail(new RuntimeException("too late"))).get(5, TimeUnit.SECONDS));
        assertEquals(AsyncJob.State.ABANDONED, job.state());
        assertThrows(IllegalStateException.class, job::result);
        assertNull(job.failure());
        assertEquals(0, pool.inFlight(), "a late completion does not touch the pool");

        IllegalStateException e = assertThrows(IllegalStateException.class, job::resume);
        assertTrue(e.getMessage().contains("ABANDONED"), e.getMessage());
    }

    @Test
    void shouldDropCompletionThatArrivedBeforeAbandonWithoutResume() {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, handedOff());
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertTrue(job.complete("never read"));
        assertTrue(job.abandon(), "a job with a pending completion is still live");
        assertEquals(AsyncJob.State.ABANDONED, job.state());
        assertThrows(IllegalStateException.class, job::result);
        assertReleased(job);
    }

    @Test
    void shouldAbandonNewJobWithoutTouchingThePool() {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, handedOff());
        assertTrue(job.abandon());
        assertEquals(0, pool.inFlight());
        IllegalStateException e = assertThrows(IllegalStateException.class, job::start);
        assertTrue(e.getMessage().contains("ABANDONED"), e.getMessage());
    }

    @Test
    void shouldReturnErrAndReleaseOnceWhenOperationAbandonsItsOwnJob() {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, j -> assertTrue(j.abandon()));
        assertEquals(AsyncStartResult.ERR, job.start());
        assertEquals(AsyncJob.State.ABANDONED, job.state());
        assertReleased(job);
    }

    @Test
    void shouldIgnoreCompletionOfJobNotStartedYet() {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, handedOff());
        assertFalse(job.complete("stray"));
        assertFalse(job.fail(new RuntimeException("stray")));
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertTrue(job.complete("real"), "the stray completion did not poison the job");
        assertEquals(AsyncStartResult.FINISH, job.resume());
        assertEquals("real", job.result());
    }

    @Test
    void shouldFailRetryWhenCtxWasClosedUnderPausedJob() {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, j -> j.waitCtx().setStatus(AsyncStatus.EAGAIN));
        assertEquals(AsyncStartResult.PAUSE, job.start());
        ctx.close(); // misuse: the owner should abandon first
        assertEquals(AsyncStartResult.ERR, job.resume());
        assertInstanceOf(IllegalStateException.class, job.failure());
        assertReleased(job);
    }

    @Test
    void shouldServeSecondJobOnSameCtxAfterFirstEnds() {
        AsyncJob<String> first = new AsyncJob<>(pool, ctx, j -> j.waitCtx().setWaitFd(this, 7, null, null));
        assertEquals(AsyncStartResult.PAUSE, first.start());
        assertTrue(first.complete("one"));
        assertEquals(AsyncStartResult.FINISH, first.resume());
        assertNull(ctx.currentJob());

        AsyncJob<String> second = new AsyncJob<>(pool, ctx, j -> {
            assertEquals(7, j.waitCtx().getFd(this).fd(), "the engine's fd survives across jobs");
            j.complete("two");
        });
        assertEquals(AsyncStartResult.FINISH, second.start());
        assertEquals("two", second.result());

        AsyncJob<String> third = new AsyncJob<>(pool, ctx, handedOff());
        assertEquals(AsyncStartResult.PAUSE, third.start());
        assertTrue(third.abandon());
        AsyncJob<String> fourth = new AsyncJob<>(pool, ctx, j -> j.complete("four"));
        assertEquals(AsyncStartResult.FINISH, fourth.start(), "a ctx is free again after an abandon");
    }

    @Test
    void shouldRefuseSecondJobOnCtxWhileFirstIsLive() {
        AsyncJob<String> first = new AsyncJob<>(pool, ctx, handedOff());
        AsyncJob<String> second = new AsyncJob<>(pool, ctx, handedOff());
        assertEquals(AsyncStartResult.PAUSE, first.start());
        IllegalStateException e = assertThrows(IllegalStateException.class, second::start);
        assertTrue(e.getMessage().contains("one job at a time"), e.getMessage());
        assertEquals(AsyncJob.State.NEW, second.state());
        assertEquals(1, pool.inFlight(), "the refused start took no slot");
        assertSame(first, ctx.currentJob());
    }

    @Test
    void shouldStayNewAndUnboundWhenPoolIsFull() {
        AsyncJobPool one = new AsyncJobPool(1, owner);
        AsyncWaitCtx otherCtx = new AsyncWaitCtx();
        AsyncJob<String> holder = new AsyncJob<>(one, otherCtx, handedOff());
        assertEquals(AsyncStartResult.PAUSE, holder.start());
        AsyncJob<String> job = new AsyncJob<>(one, ctx, handedOff());
        assertEquals(AsyncStartResult.NO_JOBS, job.start());
        assertEquals(AsyncJob.State.NEW, job.state());
        assertNull(ctx.currentJob());
        assertEquals(0, job.runs());
        assertTrue(holder.abandon());
        assertEquals(AsyncStartResult.PAUSE, job.start(), "a NO_JOBS job can start again");
        otherCtx.close();
    }

    @Test
    void shouldRejectMisuseOfStartAndResumeWithClearMessages() {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, handedOff());
        IllegalStateException e = assertThrows(IllegalStateException.class, job::resume);
        assertEquals("resume: job is NEW; only a paused job can be resumed", e.getMessage());

        assertEquals(AsyncStartResult.PAUSE, job.start());
        e = assertThrows(IllegalStateException.class, job::start);
        assertEquals("start: job is PAUSED; a job is started once", e.getMessage());

        assertTrue(job.complete("x"));
        assertEquals(AsyncStartResult.FINISH, job.resume());
        e = assertThrows(IllegalStateException.class, job::resume);
        assertTrue(e.getMessage().contains("FINISHED"), e.getMessage());
        e = assertThrows(IllegalStateException.class, job::start);
        assertTrue(e.getMessage().contains("FINISHED"), e.getMessage());

        AsyncJob<String> notFinished = new AsyncJob<>(pool, ctx, handedOff());
        e = assertThrows(IllegalStateException.class, notFinished::result);
        assertTrue(e.getMessage().contains("NEW"), e.getMessage());
    }

    @Test
    void shouldRefuseStartOnClosedCtx() {
        AsyncWaitCtx closed = new AsyncWaitCtx();
        closed.close();
        AsyncJob<String> job = new AsyncJob<>(pool, closed, handedOff());
        IllegalStateException e = assertThrows(IllegalStateException.class, job::start);
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertEquals(0, pool.inFlight());
    }

    @Test
    void shouldRejectNullArguments() {
        AsyncOperation<String> op = handedOff();
        assertEquals("pool", assertThrows(NullPointerException.class,
                () -> new AsyncJob<>(null, ctx, op)).getMessage());
        assertEquals("ctx", assertThrows(NullPointerException.class,
                () -> new AsyncJob<>(pool, null, op)).getMessage());
        assertEquals("operation", assertThrows(NullPointerException.class,
                () -> new AsyncJob<String>(pool, ctx, null)).getMessage());
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, op);
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertEquals("cause", assertThrows(NullPointerException.class, () -> job.fail(null)).getMessage());
        assertEquals(AsyncJob.State.PAUSED, job.state(), "a rejected fail(null) does not settle the job");
    }

    @Test
    void shouldKeepAttachmentAndExposeItsPoolAndCtx() {
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, handedOff());
        assertNull(job.attachment());
        Object conn = new Object();
        job.attach(conn);
        assertSame(conn, job.attachment());
        assertSame(pool, job.pool());
        assertSame(ctx, job.waitCtx());
    }
}
