package io.asyncctx.netty;

import static io.asyncctx.netty.Loops.onLoop;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.EventFd;
import io.asyncctx.netty.Loops.Transport;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.unix.FileDescriptor;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@link ConnectionWaitFds} on real loops, driven through an idle connection's own ctx: fds the ctx adds are
 * registered once each, an fd the loop refuses is reported with its number, and releasing waits for the registrations
 * to leave the loop (synchronously on epoll, later on io_uring).
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class ConnectionWaitFdsTest {

    @ParameterizedTest
    @EnumSource(value = Transport.class, names = {"EPOLL", "IO_URING"})
    void shouldRegisterAddedFdsOnceAndReleaseThemAll(Transport t) throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(t, 1);
        try (TestEngine engine = new TestEngine(FdMode.PER_CTX); EventFd a = EventFd.create();
             EventFd b = EventFd.create()) {
            IoEventLoop loop = (IoEventLoop) group.next();
            AsyncOffloadConnection conn = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine,
                    OffloadConfig.builder().notify(OffloadConfig.Notify.FD).build()));
            ConnectionWaitFds fds = conn.waitFdSet();
            AsyncWaitCtx ctx = conn.waitCtx();
            onLoop(loop, () -> {
                ctx.setWaitFd("a", a.fd(), null, null);
                ctx.setWaitFd("b", b.fd(), null, null);
                assertNull(fds.sync(ctx));
                assertNull(fds.sync(ctx), "the same change set again adds nothing");
            });
            int[] expected = {Math.min(a.fd(), b.fd()), Math.max(a.fd(), b.fd())};
            assertArrayEquals(expected, onLoop(loop, fds::sorted));
            assertEquals(2, AsyncOffloadLoops.registeredWaitFds(loop));
            boolean goneAtOnce = onLoop(loop, fds::releaseAll);
            assertEquals(t == Transport.EPOLL, goneAtOnce,
                    "epoll removes a registration inside cancel(); io_uring after its ASYNC_CANCEL completes");
            assertEquals(0, (int) onLoop(loop, fds::count));
            Loops.await("registrations gone", () -> AsyncOffloadLoops.registeredWaitFds(loop) == 0);
            onLoop(loop, () -> {
                ctx.clearFd("a");
                ctx.clearFd("b");
                conn.close();
            });
        } finally {
            Loops.shutdown(group);
        }
    }

    @ParameterizedTest
    @EnumSource(value = Transport.class, names = {"EPOLL"})
    void shouldReportTheFdTheLoopRefuses(Transport t, @TempDir Path dir) throws Exception {
        MultiThreadIoEventLoopGroup group = Loops.group(t, 1);
        File file = Files.writeString(dir.resolve("not-pollable"), "x").toFile();
        FileDescriptor regular = FileDescriptor.from(file);
        try (TestEngine engine = new TestEngine(FdMode.PER_CTX)) {
            IoEventLoop loop = (IoEventLoop) group.next();
            AsyncOffloadConnection conn = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine,
                    OffloadConfig.builder().notify(OffloadConfig.Notify.FD).build()));
            ConnectionWaitFds.Failure f = onLoop(loop, () -> {
                conn.waitCtx().setWaitFd("file", regular.intValue(), null, null);
                return conn.waitFdSet().sync(conn.waitCtx());
            });
            assertEquals(regular.intValue(), f.fd());
            assertTrue(f.cause() != null);
            assertEquals(0, (int) onLoop(loop, () -> conn.waitFdSet().count()));
            assertEquals(0, AsyncOffloadLoops.registeredWaitFds(loop));
            onLoop(loop, () -> {
                conn.waitCtx().clearFd("file");
                conn.close();
            });
        } finally {
            Loops.shutdown(group);
            regular.close();
        }
    }
}
