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
 * does not retry it recursively, and nothing is left on the loop.
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
}
