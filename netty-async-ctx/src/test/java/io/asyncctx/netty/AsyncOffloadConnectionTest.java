package io.asyncctx.netty;

import io.asyncctx.AsyncEngineException;
import io.asyncctx.WaitFd;
import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.EventFd;
import io.asyncctx.engine.PendingOperation;
import io.asyncctx.netty.Loops.Transport;
import io.asyncctx.netty.OffloadConfig.Notify;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.channels.ClosedChannelException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;

import static io.asyncctx.netty.Loops.await;
import static io.asyncctx.netty.Loops.onLoop;
import static io.asyncctx.netty.Loops.op;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One connection's job flow on real event loops: fd path (epoll, io_uring) and callback path (all three). */
@Timeout(60)
class AsyncOffloadConnectionTest {

    private MultiThreadIoEventLoopGroup group;
    private TestEngine engine;

    static Stream<Arguments> paths() {
        return Stream.of(
                Arguments.of(Transport.EPOLL, Notify.FD),
                Arguments.of(Transport.IO_URING, Notify.FD),
                Arguments.of(Transport.EPOLL, Notify.CALLBACK),
                Arguments.of(Transport.IO_URING, Notify.CALLBACK),
                Arguments.of(Transport.NIO, Notify.CALLBACK));
    }

    private IoEventLoop setUp(Transport t, FdMode mode) {
        group = Loops.group(t, 1);
        engine = new TestEngine(mode);
        return (IoEventLoop) group.next();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (group != null) {
            Loops.shutdown(group);
        }
        if (engine != null) {
            engine.close();
        }
    }

    private static OffloadConfig config(Notify n) {
        return OffloadConfig.builder().notify(n).build();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("paths")
    void shouldResumeOnLoopThreadExactlyOnceWhenEngineCompletesFromItsThread(Transport t, Notify n) throws Exception {
        IoEventLoop loop = setUp(t, FdMode.PER_CTX);
        // Held until the job has paused, then completed from a thread of its own: no race with a timed delay.
        engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
        Thread loopThread = onLoop(loop, Thread::currentThread);
        AtomicReference<Thread> listenerThread = new AtomicReference<>();
        AtomicInteger notified = new AtomicInteger();
        AsyncOffloadConnection conn = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, config(n)));
        assertEquals(n, conn.notifyMode());
        assertEquals(AsyncOffloadConnection.State.IDLE, onLoop(loop, conn::state));
        Future<byte[]> f = onLoop(loop, () -> {
            Future<byte[]> fut = conn.submit(op(7));
            assertTrue(conn.isPaused(), () -> "the job pauses while the engine works: " + fut);
            assertEquals(AsyncOffloadConnection.State.IN_ENGINE, conn.state());
            fut.addListener(x -> {
                listenerThread.set(Thread.currentThread());
                notified.incrementAndGet();
            });
            return fut;
        });
        assertEquals(1, engine.pendingCount());
        Thread engineThread = new Thread(() -> engine.completeAll(), "engine-thread");
        engineThread.start();
        engineThread.join(10_000);
        assertArrayEquals(TestEngine.expected(op(7).input()), f.get(10, TimeUnit.SECONDS));
        await("listener ran", () -> notified.get() == 1);
        assertSame(loopThread, listenerThread.get());
        assertEquals(1, (int) onLoop(loop, conn::resumes));
        assertEquals(1, notified.get());
        assertEquals(AsyncOffloadConnection.State.IDLE, onLoop(loop, conn::state), "idle again once it completed");
        assertEquals(n == Notify.FD ? 1 : 0, AsyncOffloadLoops.registeredWaitFds(loop));
        assertEquals(0, (int) onLoop(loop, () -> AsyncOffloadLoops.jobsInFlight(loop)));
        onLoop(loop, conn::close);
        assertEquals(0, AsyncOffloadLoops.openConnections(loop));
        // io_uring removes the registration asynchronously (after the poll's cancellation completes).
        await("registration removed", () -> AsyncOffloadLoops.registeredWaitFds(loop) == 0);
        await("ctx closed after its fd left the loop", () -> {
            try {
                return onLoop(loop, conn::isCtxClosed);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        assertEquals(AsyncOffloadConnection.State.CLOSED, onLoop(loop, conn::state));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("paths")
    void shouldCompleteAtOnceWhenEngineCompletesBeforePause(Transport t, Notify n) throws Exception {
        IoEventLoop loop = setUp(t, FdMode.PER_CTX);
        engine.behaviour = TestEngine.Behaviour.SYNC;
        AsyncOffloadConnection conn = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, config(n)));
        for (int i = 0; i < 3; i++) {
            int k = i;
            Future<byte[]> f = onLoop(loop, () -> conn.submit(op(k)));
            assertTrue(f.isDone(), "FINISH at start completes the future inside submit");
            assertArrayEquals(TestEngine.expected(op(k).input()), f.getNow());
        }
        assertEquals(0, (int) onLoop(loop, conn::resumes));
        onLoop(loop, conn::close);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("paths")
    void shouldStayPausedOnSpuriousWakeUpAndCompleteLater(Transport t, Notify n) throws Exception {
        IoEventLoop loop = setUp(t, FdMode.PER_CTX);
        engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
        AsyncOffloadConnection conn = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, config(n)));
        Future<byte[]> f = onLoop(loop, () -> conn.submit(op(1)));
        await("engine holds the op", () -> engine.pendingCount() == 1);
        for (int i = 0; i < 3; i++) {
            if (n == Notify.FD) {
                WaitFd wfd = onLoop(loop, () -> conn.waitCtx().getFd(engine));
                assertTrue(((EventFd) wfd.customData()).signal());
            } else {
                var ctx = conn.waitCtx();
                assertEquals(1, ctx.getCallback().call(ctx.getCallbackArg()));
            }
            int expected = i + 1;
            await("spurious wake-up seen", () -> {
                try {
                    return onLoop(loop, () -> n == Notify.FD ? (int) LoopState.peek(loop).registry.readableEvents()
                            : conn.spuriousWakeups()) >= expected;
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });
        }
        assertFalse(f.isDone());
        assertTrue(onLoop(loop, conn::isPaused));
        assertEquals(1, engine.completeAll());
        assertArrayEquals(TestEngine.expected(op(1).input()), f.get(10, TimeUnit.SECONDS));
        assertEquals(1, (int) onLoop(loop, conn::resumes));
        onLoop(loop, conn::close);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("paths")
    void shouldRetryEagainWithBackoffUntilEngineTakesTheOperation(Transport t, Notify n) throws Exception {
        IoEventLoop loop = setUp(t, FdMode.PER_CTX);
        engine.refuseNext.set(4);
        OffloadConfig cfg = OffloadConfig.builder().notify(n).eagainInitialBackoff(Duration.ofMillis(1))
                .eagainMaxBackoff(Duration.ofMillis(4)).eagainMaxRetries(5).build();
        AsyncOffloadConnection conn = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, cfg));
        long start = System.nanoTime();
        Future<byte[]> f = onLoop(loop, () -> {
            Future<byte[]> fut = conn.submit(op(3));
            assertEquals(AsyncOffloadConnection.State.BACKING_OFF, conn.state(), "the engine answered EAGAIN");
            return fut;
        });
        assertArrayEquals(TestEngine.expected(op(3).input()), f.get(10, TimeUnit.SECONDS));
        long elapsedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertEquals(5, engine.offers.get(), "1 try + 4 retries");
        assertEquals(4, engine.refusals.get());
        // Backoff 1 + 2 + 4 + 4 ms: at least the sum of the delays passed.
        assertTrue(elapsedMs >= 11, "retries waited their backoff: " + elapsedMs + " ms");
        onLoop(loop, conn::close);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("paths")
    void shouldFailWithEngineAndRetryCountWhenEagainRetriesAreExhausted(Transport t, Notify n) throws Exception {
        IoEventLoop loop = setUp(t, FdMode.PER_CTX);
        engine.refuseNext.set(-1);
        OffloadConfig cfg = OffloadConfig.builder().notify(n).eagainMaxRetries(2).build();
        AsyncOffloadConnection conn = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, cfg));
        Future<byte[]> f = onLoop(loop, () -> conn.submit(op(3)));
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(10, TimeUnit.SECONDS));
        assertInstanceOf(AsyncEngineException.class, e.getCause());
        String msg = e.getCause().getMessage();
        assertTrue(msg.contains("test-engine") && msg.contains("EAGAIN") && msg.contains("2 retries"), msg);
        assertEquals(3, engine.offers.get());
        assertEquals(0, (int) onLoop(loop, () -> AsyncOffloadLoops.jobsInFlight(loop)));
        onLoop(loop, conn::close);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("paths")
    void shouldFailWithEngineExceptionOnErr(Transport t, Notify n) throws Exception {
        IoEventLoop loop = setUp(t, FdMode.PER_CTX);
        AsyncOffloadConnection conn = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, config(n)));
        engine.behaviour = TestEngine.Behaviour.ERR;
        Future<byte[]> f1 = onLoop(loop, () -> conn.submit(op(1)));
        assertTrue(f1.isDone());
        assertInstanceOf(AsyncEngineException.class, f1.cause());
        assertTrue(f1.cause().getMessage().contains("test-engine"), f1.cause().getMessage());

        engine.behaviour = TestEngine.Behaviour.FAIL_LATER;
        Future<byte[]> f2 = onLoop(loop, () -> conn.submit(op(2)));
        ExecutionException e = assertThrows(ExecutionException.class, () -> f2.get(10, TimeUnit.SECONDS));
        assertInstanceOf(AsyncEngineException.class, e.getCause());
        assertInstanceOf(java.io.IOException.class, e.getCause().getCause());
        assertTrue(e.getCause().getMessage().contains("test-engine"));
        onLoop(loop, conn::close);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("paths")
    void shouldAbandonAndCancelOnTimeout(Transport t, Notify n) throws Exception {
        IoEventLoop loop = setUp(t, FdMode.PER_CTX);
        engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
        OffloadConfig cfg = OffloadConfig.builder().notify(n).operationTimeout(Duration.ofMillis(50)).build();
        AsyncOffloadConnection conn = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, cfg));
        Future<byte[]> f = onLoop(loop, () -> conn.submit(op(1)));
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(10, TimeUnit.SECONDS));
        assertInstanceOf(AsyncOffloadTimeoutException.class, e.getCause());
        String msg = e.getCause().getMessage();
        assertTrue(msg.contains("50 ms") && msg.contains("test-engine"), msg);
        assertEquals(1, engine.cancels.get());
        assertEquals(1, engine.completeAll(), "a late completion is dropped");
        // The connection serves the next operation.
        engine.behaviour = TestEngine.Behaviour.DELAYED;
        Future<byte[]> f2 = onLoop(loop, () -> conn.submit(op(2)));
        assertArrayEquals(TestEngine.expected(op(2).input()), f2.get(10, TimeUnit.SECONDS));
        onLoop(loop, conn::close);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("paths")
    void shouldFailSecondSubmitWhileOneIsInFlight(Transport t, Notify n) throws Exception {
        IoEventLoop loop = setUp(t, FdMode.PER_CTX);
        engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
        AsyncOffloadConnection conn = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, config(n)));
        Future<byte[]> f1 = onLoop(loop, () -> conn.submit(op(1)));
        Future<byte[]> f2 = onLoop(loop, () -> conn.submit(op(2)));
        assertInstanceOf(IllegalStateException.class, f2.cause());
        engine.completeAll();
        assertArrayEquals(TestEngine.expected(op(1).input()), f1.get(10, TimeUnit.SECONDS));
        onLoop(loop, conn::close);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("paths")
    void shouldCloseWhilePausedAndIgnoreLateCompletion(Transport t, Notify n) throws Exception {
        IoEventLoop loop = setUp(t, FdMode.PER_CTX);
        engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
        int before = Loops.openFds();
        AsyncOffloadConnection conn = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, config(n)));
        Future<byte[]> f = onLoop(loop, () -> conn.submit(op(1)));
        await("engine holds the op", () -> engine.pendingCount() == 1);
        onLoop(loop, conn::close);
        onLoop(loop, conn::close); // idempotent
        assertInstanceOf(ClosedChannelException.class, f.cause());
        assertEquals(1, engine.cancels.get());
        await("ctx closed", () -> {
            try {
                return onLoop(loop, conn::isCtxClosed);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        for (PendingOperation p : engine.takePending()) {
            p.complete(new byte[1]); // dropped: the job was abandoned
            p.signal(); // a closed eventfd ignores it; the callback queues a task that finds nothing
            if (p.eventFd() != null) {
                assertTrue(p.eventFd().isClosed());
                assertFalse(p.eventFd().signal());
            }
        }
        await("registration removed", () -> AsyncOffloadLoops.registeredWaitFds(loop) == 0);
        Loops.awaitFds(before);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("paths")
    void shouldQueueOnNoJobsAndStartWhenSlotFrees(Transport t, Notify n) throws Exception {
        IoEventLoop loop = setUp(t, FdMode.PER_CTX);
        engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
        OffloadConfig cfg = OffloadConfig.builder().notify(n).maxJobsPerLoop(2).build();
        List<AsyncOffloadConnection> conns = new ArrayList<>();
        List<Future<byte[]>> futures = new ArrayList<>();
        onLoop(loop, () -> {
            for (int i = 0; i < 5; i++) {
                AsyncOffloadConnection c = AsyncOffloadConnection.open(loop, engine, cfg);
                conns.add(c);
                futures.add(c.submit(op(i)));
            }
        });
        assertEquals(2, (int) onLoop(loop, () -> AsyncOffloadLoops.jobsInFlight(loop)));
        assertEquals(3, (int) onLoop(loop, () -> AsyncOffloadLoops.jobsWaiting(loop)));
        assertEquals(List.of(AsyncOffloadConnection.State.IN_ENGINE, AsyncOffloadConnection.State.IN_ENGINE,
                AsyncOffloadConnection.State.WAITING_FOR_SLOT, AsyncOffloadConnection.State.WAITING_FOR_SLOT,
                AsyncOffloadConnection.State.WAITING_FOR_SLOT),
                onLoop(loop, () -> conns.stream().map(AsyncOffloadConnection::state).toList()));
        // Closing a waiting connection removes its waiter.
        onLoop(loop, conns.get(4)::close);
        assertInstanceOf(ClosedChannelException.class, futures.get(4).cause());
        assertEquals(2, (int) onLoop(loop, () -> AsyncOffloadLoops.jobsWaiting(loop)));
        // Completing the two in the engine frees their slots: the two remaining waiters take them, in order.
        assertEquals(2, engine.completeAll());
        for (int i = 0; i < 2; i++) {
            assertArrayEquals(TestEngine.expected(op(i).input()), futures.get(i).get(10, TimeUnit.SECONDS));
        }
        await("the waiters took the freed slots", () -> engine.pendingCount() == 2);
        assertEquals(List.of(AsyncOffloadConnection.State.IN_ENGINE, AsyncOffloadConnection.State.IN_ENGINE),
                onLoop(loop, () -> List.of(conns.get(2).state(), conns.get(3).state())));
        assertEquals(0, (int) onLoop(loop, () -> AsyncOffloadLoops.jobsWaiting(loop)));
        assertEquals(2, engine.completeAll());
        for (int i = 2; i < 4; i++) {
            assertArrayEquals(TestEngine.expected(op(i).input()), futures.get(i).get(10, TimeUnit.SECONDS));
        }
        assertEquals(4, engine.offers.get(), "the closed waiter never reached the engine");
        assertEquals(0, (int) onLoop(loop, () -> AsyncOffloadLoops.jobsInFlight(loop)));
        assertEquals(0, (int) onLoop(loop, () -> AsyncOffloadLoops.jobsWaiting(loop)));
        onLoop(loop, () -> conns.forEach(AsyncOffloadConnection::close));
    }

    @Test
    void shouldRefuseFdNotificationOnNioLoop() throws Exception {
        IoEventLoop loop = setUp(Transport.NIO, FdMode.PER_CTX);
        IllegalArgumentException e = onLoop(loop, () -> assertThrows(IllegalArgumentException.class,
                () -> AsyncOffloadConnection.open(loop, engine, config(Notify.FD))));
        assertTrue(e.getMessage().contains("CALLBACK"), e.getMessage());
        AsyncOffloadConnection auto = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine,
                OffloadConfig.defaults()));
        assertEquals(Notify.CALLBACK, auto.notifyMode());
        onLoop(loop, auto::close);
    }

    @Test
    void shouldRefuseOpenOffTheLoopThread() {
        IoEventLoop loop = setUp(Transport.EPOLL, FdMode.PER_CTX);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> AsyncOffloadConnection.open(loop, engine, OffloadConfig.defaults()));
        assertNotNull(e.getMessage());
    }
}
