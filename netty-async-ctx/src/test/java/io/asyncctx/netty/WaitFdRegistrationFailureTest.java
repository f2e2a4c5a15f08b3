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
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.unix.FileDescriptor;
import io.netty.util.concurrent.Future;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PublicKey;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * An engine whose wait fd epoll refuses (a regular file: EPERM) fails that operation with a clear error; the registry
 * does not retry it recursively, and nothing is left on the loop. An io_uring poll that completes with an error (injected
 * through the registry's test seam) re-creates the registration a bounded number of times, then fails the waiters.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class WaitFdRegistrationFailureTest {

    @Test
    void shouldFailTheOperationCleanlyWhenEpollRefusesTheWaitFd(@TempDir Path dir) throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(Transport.EPOLL, 1); // loads the native library first
        File file = Files.writeString(dir.resolve("not-pollable"), "x").toFile();
        FileDescriptor regular = FileDescriptor.from(file);
        AsyncEngine engine = new AsyncEngine() {
            @Override
            public String name() {
                return "bad-fd";
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
                            ctx.setWaitFd(this, regular.intValue(), null, null);
                        }
                    }
                };
            }

            @Override
            public void close() {
            }
        };
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

    /** A loop's registry, with the test seam set on the loop to fail the next {@code failures} io_uring polls. */
    private static WaitFdRegistry failPolls(IoEventLoop loop, int failures) throws Exception {
        return onLoop(loop, () -> {
            WaitFdRegistry r = LoopState.of(loop).registry;
            int[] left = {failures};
            r.pollResultHook = res -> left[0]-- > 0 ? -5 /* EIO */ : res;
            return r;
        });
    }

    @Test
    void shouldRecreateTheIoUringRegistrationAfterAFailedPollAndResume() throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(Transport.IO_URING, 1);
        try (TestEngine engine = new TestEngine(io.asyncctx.engine.AbstractAsyncEngine.FdMode.SHARED_PER_LOOP)) {
            IoEventLoop loop = (IoEventLoop) group.next();
            engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
            WaitFdRegistry registry = failPolls(loop, WaitFdRegistry.MAX_POLL_RETRIES);
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
            IoEventLoop loop = (IoEventLoop) group.next();
            engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
            WaitFdRegistry registry = failPolls(loop, Integer.MAX_VALUE);
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
            onLoop(loop, () -> registry.pollResultHook = null);
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
