package io.asyncctx.bench.jmh;

import io.asyncctx.engine.AbstractAsyncEngine;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.PendingOperation;
import io.asyncctx.engine.SignatureScheme;
import io.asyncctx.netty.AsyncOffloadConnection;
import io.asyncctx.netty.OffloadConfig;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoEventLoop;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GenericFutureListener;
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
 * The shared-eventfd path ({@link AbstractAsyncEngine.FdMode#SHARED_PER_LOOP}) with {@code batch} completions per
 * wake-up: {@code batch} connections on one real event loop share one eventfd; each has a paused operation. The JMH
 * thread takes {@code System.nanoTime()}, completes all of them quietly ({@link PendingOperation#completeQuietly}) and
 * signals the shared fd once; the loop wakes once, drains the fd and resumes every connection with a completion
 * pending. The last listener takes the second timestamp. Recorded (see {@link OneWayLatencyProfiler}):
 * {@code batch.perJob} = (last listener - first completion) / batch, and {@code batch.total}. The primary score
 * (sample mode) is the whole batch's round trip as the JMH thread sees it. The next batch is submitted on the loop
 * after the last listener has stamped, and waited for outside the measured method.
 *
 * <p>Threading: fields marked "loop" are touched by the loop thread only; volatile fields cross threads.
 */
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class SharedFdBatchBenchmark extends AbstractBenchmark {

    private static final byte[] RESULT = new byte[256];
    private static final KeyOperation OPERATION = KeyOperation.sign(SignatureScheme.RSA_PSS_RSAE_SHA256, new byte[130]);

    @Param({"1", "64"})
    public int batch;

    @Param({"EPOLL", "IO_URING"})
    public Transport transport;

    @Param({"10s"})
    public String timeout;

    /** Microseconds the benchmark thread waits after the loop has armed the next operation, before it completes it
     *  (outside the measured method): 0 signals a loop that may still be running; 50 a loop asleep in its poll. */
    @Param({"0", "50"})
    public int gapMicros;

    /** Further connections paused on the same shared eventfd whose operations never complete during the run: the
     *  cost a wake-up pays for waiters that have nothing to resume. */
    @Param({"0"})
    public int idle;

    private EventLoopGroup group;
    private IoEventLoop loop;
    private ManualEngine engine;
    private AsyncOffloadConnection[] connections; // loop
    private AsyncOffloadConnection[] idleConnections; // loop
    private PendingOperation[] current; // benchmark thread
    private int listened; // loop
    private SingleWriterRecorder perJob;
    private SingleWriterRecorder total;
    private final GenericFutureListener<Future<byte[]>> listener = this::onComplete;

    private volatile PendingOperation[] batchReady;
    private volatile long signalNanos;
    private volatile long batches;
    private volatile Throwable failure;
    private long expected; // benchmark thread

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        Latencies.clear();
        perJob = Latencies.recorder("batch.perJob");
        total = Latencies.recorder("batch.total");
        group = transport.newSingleLoopGroup();
        loop = (IoEventLoop) group.next();
        engine = new ManualEngine(AbstractAsyncEngine.FdMode.SHARED_PER_LOOP);
        OffloadConfig config = OffloadConfig.builder()
                .notify(OffloadConfig.Notify.FD)
                .maxJobsPerLoop(Math.max(1024, batch + idle))
                .operationTimeout(Duration.parse("PT" + timeout.toUpperCase()))
                .build();
        connections = new AsyncOffloadConnection[batch];
        idleConnections = new AsyncOffloadConnection[idle];
        OffloadConfig idleConfig = config.toBuilder().operationTimeout(Duration.ZERO).build();
        loop.submit(() -> {
            for (int i = 0; i < batch; i++) {
                connections[i] = AsyncOffloadConnection.open(loop, engine, config);
            }
            for (int i = 0; i < idle; i++) {
                idleConnections[i] = AsyncOffloadConnection.open(loop, engine, idleConfig);
                if (idleConnections[i].submit(OPERATION).isDone()) {
                    throw new IllegalStateException("an idle connection's operation completed at once");
                }
                engine.takeOffered(); // kept by nobody: it never completes; close() abandons it
            }
        }).sync();
        loop.execute(this::arm);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        loop.submit(() -> {
            for (AsyncOffloadConnection c : connections) {
                if (c != null) {
                    c.close();
                }
            }
            for (AsyncOffloadConnection c : idleConnections) {
                if (c != null) {
                    c.close();
                }
            }
        }).sync();
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        engine.close();
        if (engine.sharedFdCount() != 0) {
            throw new IllegalStateException("shared eventfds left open: " + engine.sharedFdCount());
        }
    }

    /** Waits, outside the measured method, until the loop has armed the next batch. */
    @Setup(Level.Invocation)
    public void awaitReady() {
        long start = System.nanoTime();
        PendingOperation[] r;
        while ((r = batchReady) == null) {
            checkFailure();
            checkStall(start, "the next batch", engine);
            Thread.onSpinWait();
        }
        batchReady = null;
        current = r;
        if (gapMicros > 0) {
            long until = System.nanoTime() + gapMicros * 1000L;
            while (System.nanoTime() < until) {
                Thread.onSpinWait();
            }
        }
        expected = batches + 1;
    }

    @Benchmark
    public long resumeBatch() {
        PendingOperation[] ops = current;
        long target = expected;
        long start = System.nanoTime();
        signalNanos = start;
        for (PendingOperation op : ops) {
            if (!op.completeQuietly(RESULT)) {
                throw new IllegalStateException("a job refused its completion: " + op);
            }
        }
        ops[0].signal(); // one shared eventfd: one write wakes the loop for all of them
        while (batches != target) {
            checkStall(start, "the batch's listeners", engine);
            Thread.onSpinWait();
        }
        checkFailure();
        return target;
    }

    /** Loop: the listener of every connection's operation. */
    private void onComplete(Future<byte[]> f) {
        if (!f.isSuccess()) {
            failure = f.cause() == null ? new IllegalStateException("cancelled") : f.cause();
        }
        if (++listened < batch) {
            return;
        }
        long elapsed = Math.max(0, System.nanoTime() - signalNanos);
        total.recordValue(elapsed);
        perJob.recordValue(elapsed / batch);
        listened = 0;
        batches = batches + 1; // single writer: the loop
        if (failure == null) {
            arm();
        }
    }

    /** Loop: submits one operation per connection and publishes the batch once all are paused. */
    private void arm() {
        try {
            PendingOperation[] ops = new PendingOperation[batch];
            for (int i = 0; i < batch; i++) {
                Future<byte[]> f = connections[i].submit(OPERATION);
                if (f.isDone()) {
                    throw new IllegalStateException("submit completed at once: " + f.cause(), f.cause());
                }
                f.addListener(listener);
                ops[i] = engine.takeOffered();
                if (ops[i].eventFd() == null || (i > 0 && ops[i].eventFd() != ops[0].eventFd())) {
                    throw new IllegalStateException("expected one shared eventfd, got " + ops[i].eventFd());
                }
            }
            batchReady = ops;
        } catch (Throwable t) {
            failure = t;
        }
    }

    private void checkFailure() {
        Throwable t = failure;
        if (t != null) {
            throw new IllegalStateException("an operation failed on the loop: " + t, t);
        }
    }
}
