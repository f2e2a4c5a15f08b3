package io.asyncctx.bench.jmh;

import io.asyncctx.engine.AbstractAsyncEngine;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.PendingOperation;
import io.asyncctx.engine.SignatureScheme;
import io.asyncctx.netty.AsyncOffloadConnection;
import io.asyncctx.netty.MicrometerOffloadMetrics;
import io.asyncctx.netty.OffloadConfig;
import io.asyncctx.netty.OffloadMetrics;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoEventLoop;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GenericFutureListener;
import io.netty.util.concurrent.Promise;
import org.HdrHistogram.SingleWriterRecorder;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.TearDown;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The cost of resuming one paused operation, from the engine's completion to the Netty promise completed on the event
 * loop, per notification path, against Netty's plain promise path.
 *
 * <p>One real event loop ({@code MultiThreadIoEventLoopGroup(1, epoll or io_uring)}), one real
 * {@link AsyncOffloadConnection} with a {@link ManualEngine}. The JMH thread plays the engine's completion thread: it
 * takes {@code System.nanoTime()} and completes the paused job ({@link PendingOperation#complete}: the job's CAS and the
 * signal: an eventfd write for {@link Path#FD}, the ctx callback's {@code loop.execute} for {@link Path#CALLBACK}), or,
 * for {@link Path#NETTY_PROMISE}, calls {@code setSuccess} on a {@code loop.newPromise()} whose listener was added on
 * the loop (Netty then hands the listener to the loop with {@code execute}). The listener on the loop takes the second
 * timestamp; the difference is recorded as {@code resume.oneWay} (see {@link OneWayLatencyProfiler}). The primary
 * score (sample mode) is the round trip as the JMH thread sees it: signal, then spin until the listener has run (the
 * one-way latency plus one cache-line transfer back). The next operation is submitted on the loop after the listener
 * has stamped, and waited for outside the measured method.
 *
 * <p>{@code timeout}: the library's per-operation timeout (a scheduled task per operation, cancelled at completion);
 * {@code 10s} is the default, {@code 0} turns it off, to show what the timer costs.
 *
 * <p>Threading: fields marked "loop" are touched by the loop thread only; volatile fields cross threads.
 */
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class ResumeLatencyBenchmark extends AbstractBenchmark {

    /** The path from completion to listener. */
    public enum Path {
        /** Per-ctx eventfd, polled by the loop. */
        FD,
        /** The ctx callback hands the resume to the loop with {@code execute}. */
        CALLBACK,
        /** Netty alone: {@code promise.setSuccess} from another thread, the listener runs on the loop. */
        NETTY_PROMISE
    }

    private static final byte[] RESULT = new byte[256];
    private static final KeyOperation OPERATION = KeyOperation.sign(SignatureScheme.RSA_PSS_RSAE_SHA256, new byte[130]);

    @Param({"FD", "CALLBACK", "NETTY_PROMISE"})
    public Path path;

    @Param({"EPOLL", "IO_URING"})
    public Transport transport;

    @Param({"10s"})
    public String timeout;

    /** Microseconds the benchmark thread waits after the loop has armed the next operation, before it completes it
     *  (outside the measured method): 0 signals a loop that may still be running; 50 a loop asleep in its poll. */
    @Param({"0", "50"})
    public int gapMicros;

    /** Where the offload path records: nowhere (the default), or a Micrometer registry (counters, timers, gauges). */
    @Param({"NONE", "MICROMETER"})
    public String metrics;

    private EventLoopGroup group;
    private IoEventLoop loop;
    private ManualEngine engine;
    private AsyncOffloadConnection connection; // loop
    private SingleWriterRecorder oneWay;
    private final GenericFutureListener<Future<byte[]>> listener = this::onComplete;

    /** The next operation to complete: a PendingOperation or a Promise; published by the loop. */
    private volatile Object ready;
    private volatile long signalNanos;
    private volatile long completions;
    private volatile Throwable failure;

    private Object current; // benchmark thread
    private long expected; // benchmark thread

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        Latencies.clear();
        oneWay = Latencies.recorder("resume.oneWay");
        group = transport.newSingleLoopGroup();
        loop = (IoEventLoop) group.next();
        if (path != Path.NETTY_PROMISE) {
            engine = new ManualEngine(AbstractAsyncEngine.FdMode.PER_CTX);
            OffloadConfig config = OffloadConfig.builder()
                    .notify(path == Path.FD ? OffloadConfig.Notify.FD : OffloadConfig.Notify.CALLBACK)
                    .operationTimeout(Duration.parse("PT" + timeout.toUpperCase()))
                    .metrics("MICROMETER".equals(metrics)
                            ? new MicrometerOffloadMetrics(new SimpleMeterRegistry()) : OffloadMetrics.none())
                    .build();
            loop.submit(() -> {
                connection = AsyncOffloadConnection.open(loop, engine, config);
                if (connection.notifyMode() != config.notifyMode()) {
                    throw new IllegalStateException("asked " + config.notifyMode() + ", got "
                            + connection.notifyMode());
                }
            }).sync();
        }
        loop.execute(this::arm);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        if (connection != null) {
            loop.submit(() -> connection.close()).sync();
        }
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        if (engine != null) {
            engine.close();
        }
    }

    /** Waits, outside the measured method, until the loop has armed the next operation. */
    @Setup(Level.Invocation)
    public void awaitReady() {
        long start = System.nanoTime();
        Object r;
        while ((r = ready) == null) {
            checkFailure();
            checkStall(start, "the next operation", connection);
            Thread.onSpinWait();
        }
        ready = null;
        current = r;
        if (gapMicros > 0) {
            long until = System.nanoTime() + gapMicros * 1000L;
            while (System.nanoTime() < until) {
                Thread.onSpinWait();
            }
        }
        expected = completions + 1;
    }

    @Benchmark
    public long resume() {
        Object op = current;
        long target = expected;
        long start = System.nanoTime();
        signalNanos = start;
        if (op instanceof PendingOperation p) {
            p.complete(RESULT);
        } else {
            @SuppressWarnings("unchecked")
            Promise<byte[]> promise = (Promise<byte[]>) op;
            promise.setSuccess(RESULT);
        }
        while (completions != target) {
            checkStall(start, "the listener", connection);
            Thread.onSpinWait();
        }
        checkFailure();
        return target;
    }

    /** Loop: the listener of the operation in flight. */
    private void onComplete(Future<byte[]> f) {
        long now = System.nanoTime();
        if (!f.isSuccess()) {
            failure = f.cause() == null ? new IllegalStateException("cancelled") : f.cause();
        } else {
            oneWay.recordValue(Math.max(0, now - signalNanos));
        }
        completions = completions + 1; // single writer: the loop
        if (failure == null) {
            arm();
        }
    }

    /** Loop: starts the next operation and publishes it once it is paused. */
    private void arm() {
        try {
            if (path == Path.NETTY_PROMISE) {
                Promise<byte[]> p = loop.newPromise();
                p.addListener(listener);
                ready = p;
            } else {
                Future<byte[]> f = connection.submit(OPERATION);
                if (f.isDone()) {
                    throw new IllegalStateException("submit completed at once: " + f.cause(), f.cause());
                }
                f.addListener(listener);
                ready = engine.takeOffered();
            }
        } catch (Throwable t) {
            failure = t;
        }
    }

    private void checkFailure() {
        Throwable t = failure;
        if (t != null) {
            throw new IllegalStateException("the operation failed on the loop: " + t, t);
        }
    }
}
