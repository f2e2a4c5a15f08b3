package io.asyncctx.bench.jmh;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringIoHandler;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * The base of every benchmark here: one fork, 3 x 1 s of warm-up and 5 x 1 s of measurement, Netty's leak detection
 * off (it samples buffers and would add noise). Subclasses choose the mode and the unit and declare their variants
 * with {@code @Param}; command-line options ({@code -f -wi -w -i -r}) override these defaults.
 *
 * <p>Threading: JMH creates one instance per benchmark thread ({@link Scope#Thread}); every benchmark here runs with
 * one thread, and those that start an event loop say which fields the loop thread touches.
 */
@Fork(value = 1, jvmArgsAppend = {"-Dio.netty.leakDetection.level=DISABLED", "-Xms512m", "-Xmx512m"})
@Warmup(iterations = 3, time = 1, timeUnit = TimeUnit.SECONDS)
@Measurement(iterations = 5, time = 1, timeUnit = TimeUnit.SECONDS)
@State(Scope.Thread)
public abstract class AbstractBenchmark {

    /** How long a benchmark thread waits for the event loop before it fails the run (a lost wake-up, a bug). */
    static final long STALL_NANOS = TimeUnit.SECONDS.toNanos(5);

    /** The event loop transport of the benchmarks that run a real loop. */
    public enum Transport {
        /** {@code EpollIoHandler}. */
        EPOLL,
        /** {@code IoUringIoHandler}. */
        IO_URING;

        IoHandlerFactory factory() {
            if (this == EPOLL) {
                Epoll.ensureAvailability();
                return EpollIoHandler.newFactory();
            }
            if (!IoUring.isAvailable()) {
                throw new IllegalStateException("io_uring is not available here: " + IoUring.unavailabilityCause()
                        + "; run with -p transport=EPOLL", IoUring.unavailabilityCause());
            }
            return IoUringIoHandler.newFactory();
        }

        /** A group with one loop of this transport; the caller shuts it down. */
        EventLoopGroup newSingleLoopGroup() {
            return new MultiThreadIoEventLoopGroup(1, factory());
        }
    }

    /** Fails the run when the loop has not answered for {@link #STALL_NANOS}; called from spin loops. */
    static void checkStall(long startNanos, String what, Object state) {
        if (System.nanoTime() - startNanos > STALL_NANOS) {
            throw new IllegalStateException("stalled for 5 s waiting for " + what + ": " + state);
        }
    }
}
