package io.asyncctx.netty;

import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.SignatureScheme;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringIoHandler;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Test helpers: real event loop groups by transport, running code on a loop, fd counting, waiting. */
final class Loops {

    enum Transport {
        EPOLL, IO_URING, NIO
    }

    private Loops() {
    }

    static IoHandlerFactory factory(Transport t) {
        return switch (t) {
            case EPOLL -> {
                assertTrue(Epoll.isAvailable(), "epoll must be available on Linux: " + Epoll.unavailabilityCause());
                yield EpollIoHandler.newFactory();
            }
            case IO_URING -> {
                assumeTrue(IoUring.isAvailable(), () -> "io_uring unavailable: " + IoUring.unavailabilityCause());
                yield IoUringIoHandler.newFactory();
            }
            case NIO -> NioIoHandler.newFactory();
        };
    }

    static MultiThreadIoEventLoopGroup group(Transport t, int threads) {
        return new MultiThreadIoEventLoopGroup(threads, factory(t));
    }

    static void shutdown(MultiThreadIoEventLoopGroup group) throws InterruptedException {
        group.shutdownGracefully(0, 5, TimeUnit.SECONDS);
        assertTrue(group.awaitTermination(15, TimeUnit.SECONDS), "event loop group did not terminate");
    }

    static <T> T onLoop(IoEventLoop loop, Callable<T> task) throws Exception {
        return loop.submit(task).get(10, TimeUnit.SECONDS);
    }

    static void onLoop(IoEventLoop loop, Runnable task) throws Exception {
        loop.submit(task).get(10, TimeUnit.SECONDS);
    }

    /**
     * Open anonymous-inode fds of this process: eventfds, epoll and timer fds, io_uring rings. Other fds that the JVM
     * opens lazily (jars, /dev/random) are not counted, so that the count only moves with ours and the loops'.
     */
    static int openFds() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return (int) s.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().startsWith("anon_inode:");
                } catch (IOException e) {
                    return false; // the listing's own fd, closed meanwhile
                }
            }).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void await(String what, BooleanSupplier condition) throws InterruptedException {
        await(what, Duration.ofSeconds(10), condition);
    }

    static void await(String what, Duration timeout, BooleanSupplier condition) throws InterruptedException {
        io.asyncctx.testkit.Await.until(what, timeout, condition);
    }

    /** Waits until the process has {@code expected} fds open (fds close asynchronously), failing with the count. */
    static void awaitFds(int expected) throws InterruptedException {
        io.asyncctx.testkit.Await.until(() -> "open fds: " + openFds() + ", expected " + expected,
                Duration.ofSeconds(10), () -> openFds() == expected);
    }

    static KeyOperation op(int i) {
        return KeyOperation.sign(SignatureScheme.values()[0], ByteBuffer.allocate(4).putInt(i).array());
    }
}
