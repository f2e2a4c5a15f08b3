package io.asyncctx.netty;

import static io.asyncctx.netty.Loops.onLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.AsyncEngineException;
import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.netty.Loops.Transport;
import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.unix.FileDescriptor;
import io.netty.channel.uring.IoUringIoEvent;
import io.netty.channel.uring.IoUringIoHandle;
import io.netty.util.concurrent.Future;

import java.io.File;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PublicKey;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * An engine whose wait fd epoll refuses (a regular file: EPERM) fails that operation with a clear error; the registry
 * does not retry it recursively, and nothing is left on the loop. An io_uring poll that completes with an error
 * re-creates the registration a bounded number of times, then fails the waiters: shown with a real kernel error (a poll
 * of an fd that is not open: EBADF, every time) and, for a transient one, with EIO injected at Netty's boundary (a
 * proxy of the real loop whose {@code register} wraps our handle and rewrites the first poll results; the registry has
 * no test seam).
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class WaitFdRegistrationFailureTest {

    @Test
    void shouldFailTheOperationCleanlyWhenEpollRefusesTheWaitFd(@TempDir Path dir) throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(Transport.EPOLL, 1); // loads the native library first
        File file = Files.writeString(dir.resolve("not-pollable"), "x").toFile();
        FileDescriptor regular = FileDescriptor.from(file);
        AsyncEngine engine = waitingOn(regular.intValue());
        try {
            IoEventLoop loop = (IoEventLoop) group.next();
            AsyncOffloadConnection c = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine,
                    OffloadConfig.builder().notify(OffloadConfig.Notify.FD).build()));
            for (int i = 0; i < 2; i++) {
                int n = i;
                Future<byte[]> f = onLoop(loop, () -> c.submit(Loops.op(n)));
                assertTrue(f.await(10, TimeUnit.SECONDS), "the operation must end, not hang");
                assertFalse(f.isSuccess());
                assertTrue(f.cause() instanceof AsyncEngineException, String.valueOf(f.cause()));
                assertTrue(f.cause().getMessage().contains("could not wait on fd " + regular.intValue()),
                        f.cause().getMessage());
                assertEquals(0, AsyncOffloadLoops.registeredWaitFds(loop));
                assertEquals(0, AsyncOffloadLoops.jobsInFlight(loop));
            }
            onLoop(loop, c::close);
        } finally {
            Loops.shutdown(group);
            regular.close();
        }
    }

    /**
     * The real io_uring {@code loop} seen through a proxy whose {@code register} wraps each io_uring handle, so that the
     * first {@code failures} POLL_ADD completions report EIO. Everything else goes to the real loop (the proxy has a
     * loop state of its own: the library keys it by identity).
     */
    private static IoEventLoop failingPolls(IoEventLoop loop, int failures) {
        AtomicInteger left = new AtomicInteger(failures);
        return (IoEventLoop) Proxy.newProxyInstance(IoEventLoop.class.getClassLoader(),
                new Class<?>[] {IoEventLoop.class}, (proxy, method, args) -> {
                    if (method.getDeclaringClass() == Object.class) {
                        return switch (method.getName()) {
                            case "equals" -> proxy == args[0];
                            case "hashCode" -> System.identityHashCode(proxy);
                            default -> "failing-polls(" + loop + ")";
                        };
                    }
                    if (method.getName().equals("register") && args.length == 1
                            && args[0] instanceof IoUringIoHandle h) {
                        return loop.register(new FailingPolls(h, left));
                    }
                    try {
                        return method.invoke(loop, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    /** Passes Netty's events to {@code handle}, turning a POLL_ADD's result into EIO while {@code left} lasts. */
    private record FailingPolls(IoUringIoHandle handle, AtomicInteger left) implements IoUringIoHandle {
        private static final byte OP_POLL_ADD = 6;

        @Override
        public void handle(IoRegistration registration, IoEvent event) {
            IoUringIoEvent e = (IoUringIoEvent) event;
            if (e.opcode() == OP_POLL_ADD && left.getAndUpdate(n -> n > 0 ? n - 1 : 0) > 0) {
                event = new IoUringIoEvent(-5 /* EIO */, e.flags(), e.opcode(), e.data());
            }
            handle.handle(registration, event);
        }

        @Override
        public void registered() {
            handle.registered();
        }

        @Override
        public void unregistered() {
            handle.unregistered();
        }

        @Override
        public void close() throws Exception {
            handle.close();
        }
    }

    /** An engine whose sessions wait on {@code fd} and never complete (the fd is never signalled). */
    private static AsyncEngine waitingOn(int fd) {
        return new AsyncEngine() {
            @Override
            public String name() {
                return "fd-" + fd;
            }

            @Override
            public PublicKey publicKey() {
                return null;
            }

            @Override
            public EngineSession newSession(AsyncWaitCtx ctx, Executor owner) {
                return new EngineSession() {
                    @Override
                    public void submit(AsyncJob<byte[]> job, KeyOperation operation) {
                        if (ctx.getFd(this) == null) {
                            ctx.setWaitFd(this, fd, null, null);
                        }
                    }
                };
            }

            @Override
            public void close() {
            }
        };
    }

    @Test
    void shouldFailWaitersWhenTheKernelRefusesEveryPollOfTheFd() throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(Transport.IO_URING, 1);
        int notOpen = 19_999; // below this JVM's fd limit, far above any fd a test opens: a poll of it gets EBADF
        assertFalse(new File("/proc/self/fd/" + notOpen).exists());
        try {
            IoEventLoop loop = (IoEventLoop) group.next();
            AsyncOffloadConnection c = onLoop(loop, () -> AsyncOffloadConnection.open(loop, waitingOn(notOpen),
                    OffloadConfig.builder().notify(OffloadConfig.Notify.FD).build()));
            Future<byte[]> f = onLoop(loop, () -> c.submit(Loops.op(1)));
            assertTrue(f.await(10, TimeUnit.SECONDS), "the waiter must fail, not hang");
            assertTrue(f.cause() instanceof AsyncEngineException, String.valueOf(f.cause()));
            String message = f.cause().getMessage();
            assertTrue(message.contains("failed " + (WaitFdRegistry.MAX_POLL_RETRIES + 1) + " times in a row")
                    && message.contains("errno 9") && message.contains("unusable"), message);
            assertEquals((long) WaitFdRegistry.MAX_POLL_RETRIES,
                    (long) onLoop(loop, () -> LoopState.of(loop).registry.pollRetries()));
            onLoop(loop, c::close);
            Loops.await("the dead registration left the loop", () -> AsyncOffloadLoops.registeredWaitFds(loop) == 0);
            assertEquals(0, AsyncOffloadLoops.jobsInFlight(loop));
        } finally {
            Loops.shutdown(group);
        }
    }

    @Test
    void shouldRecreateTheIoUringRegistrationAfterAFailedPollAndResume() throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(Transport.IO_URING, 1);
        try (TestEngine engine = new TestEngine(io.asyncctx.engine.AbstractAsyncEngine.FdMode.SHARED_PER_LOOP)) {
            IoEventLoop loop = failingPolls((IoEventLoop) group.next(), WaitFdRegistry.MAX_POLL_RETRIES);
            engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
            WaitFdRegistry registry = onLoop(loop, () -> LoopState.of(loop).registry);
            AsyncOffloadConnection c = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine,
                    OffloadConfig.builder().notify(OffloadConfig.Notify.FD).build()));
            Future<byte[]> f = onLoop(loop, () -> c.submit(Loops.op(1)));
            Loops.await("paused", () -> engine.pendingCount() == 1);
            assertEquals(1, engine.completeAll());
            assertTrue(f.await(10, TimeUnit.SECONDS), "resumed through a re-created registration");
            assertTrue(f.isSuccess(), String.valueOf(f.cause()));
            assertEquals((long) WaitFdRegistry.MAX_POLL_RETRIES, (long) onLoop(loop, registry::pollRetries));
            assertEquals(1, AsyncOffloadLoops.registeredWaitFds(loop), "one live registration, no leftovers");
            onLoop(loop, c::close);
            Loops.await("released", () -> AsyncOffloadLoops.registeredWaitFds(loop) == 0);
        } finally {
            Loops.shutdown(group);
        }
    }

    @Test
    void shouldFailWaitersAfterBoundedRetriesAndGiveANewConnectionAFreshRegistration() throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(Transport.IO_URING, 1);
        try (TestEngine engine = new TestEngine(io.asyncctx.engine.AbstractAsyncEngine.FdMode.SHARED_PER_LOOP)) {
            IoEventLoop real = (IoEventLoop) group.next();
            engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
            // Fails the dead registration's four polls, then none: the fd works again for the next registration.
            IoEventLoop loop = failingPolls(real, WaitFdRegistry.MAX_POLL_RETRIES + 1);
            WaitFdRegistry registry = onLoop(loop, () -> LoopState.of(loop).registry);
            OffloadConfig cfg = OffloadConfig.builder().notify(OffloadConfig.Notify.FD).build();
            AsyncOffloadConnection a = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, cfg));
            Future<byte[]> fa = onLoop(loop, () -> a.submit(Loops.op(1)));
            Loops.await("paused", () -> engine.pendingCount() == 1);
            assertEquals(1, engine.completeAll());
            assertTrue(fa.await(10, TimeUnit.SECONDS), "the waiter must fail, not hang");
            assertFalse(fa.isSuccess());
            assertTrue(fa.cause() instanceof AsyncEngineException, String.valueOf(fa.cause()));
            String message = fa.cause().getMessage();
            assertTrue(message.contains("failed " + (WaitFdRegistry.MAX_POLL_RETRIES + 1) + " times in a row")
                    && message.contains("errno 5") && message.contains("unusable"), message);
            assertEquals((long) WaitFdRegistry.MAX_POLL_RETRIES, (long) onLoop(loop, registry::pollRetries));
            Loops.await("the dead registration left the loop", () -> AsyncOffloadLoops.registeredWaitFds(loop) == 0);

            // The fd works again: a new connection on the same shared fd gets a registration of its own.
            AsyncOffloadConnection b = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, cfg));
            Future<byte[]> fb = onLoop(loop, () -> b.submit(Loops.op(2)));
            Loops.await("b paused", () -> engine.pendingCount() == 1);
            assertEquals(1, AsyncOffloadLoops.registeredWaitFds(loop));
            assertEquals(1, engine.completeAll());
            assertTrue(fb.await(10, TimeUnit.SECONDS) && fb.isSuccess(), String.valueOf(fb.cause()));
            onLoop(loop, a::close);
            onLoop(loop, b::close);
            Loops.await("released", () -> AsyncOffloadLoops.registeredWaitFds(loop) == 0);
        } finally {
            Loops.shutdown(group);
        }
    }
}
