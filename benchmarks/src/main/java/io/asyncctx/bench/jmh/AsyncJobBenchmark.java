package io.asyncctx.bench.jmh;

import io.asyncctx.AsyncCallback;
import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncJobPool;
import io.asyncctx.AsyncOperation;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncStatus;
import io.asyncctx.AsyncWaitCtx;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.TearDown;

import java.util.concurrent.TimeUnit;

/**
 * The callback half of {@link AsyncWaitCtx} and a whole {@link AsyncJob} life on one thread.
 *
 * <ul>
 *   <li>{@link #setAndGetCallback}: {@code setCallback(cb, arg)} then {@link AsyncWaitCtx#getCallbackBinding()} (what
 *       an engine reads at submit).</li>
 *   <li>{@link #getCallback}: {@link AsyncWaitCtx#getCallback()} alone.</li>
 *   <li>{@link #jobStartCompleteResume}: a new job on a pool (the operation sets status OK, as a callback-path engine
 *       does), start (PAUSE), complete, resume (FINISH), read the result: the job machinery without any engine or
 *       thread hand-off.</li>
 * </ul>
 *
 * <p>Threading: one benchmark thread, the owner of the ctxs and the pool.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class AsyncJobBenchmark extends AbstractBenchmark {

    private static final byte[] RESULT = new byte[256];
    private static final AsyncCallback CALLBACK = arg -> 1;

    private AsyncWaitCtx callbackCtx;
    private AsyncWaitCtx jobCtx;
    private AsyncJobPool pool;
    private final Object arg = new Object();
    private final AsyncOperation<byte[]> operation = j -> jobCtx.setStatus(AsyncStatus.OK);

    @Setup(Level.Trial)
    public void setUp() {
        callbackCtx = new AsyncWaitCtx();
        callbackCtx.setCallback(CALLBACK, arg);
        jobCtx = new AsyncWaitCtx();
        pool = new AsyncJobPool(1024, Runnable::run);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (pool.inFlight() != 0) {
            throw new IllegalStateException("jobs left in flight: " + pool);
        }
        callbackCtx.close();
        jobCtx.close();
    }

    @Benchmark
    public AsyncWaitCtx.CallbackBinding setAndGetCallback() {
        callbackCtx.setCallback(CALLBACK, arg);
        return callbackCtx.getCallbackBinding();
    }

    @Benchmark
    public AsyncCallback getCallback() {
        return callbackCtx.getCallback();
    }

    @Benchmark
    public byte[] jobStartCompleteResume() {
        AsyncJob<byte[]> job = new AsyncJob<>(pool, jobCtx, operation);
        if (job.start() != AsyncStartResult.PAUSE) {
            throw new IllegalStateException("start did not pause: " + job);
        }
        job.complete(RESULT);
        if (job.resume() != AsyncStartResult.FINISH) {
            throw new IllegalStateException("resume did not finish: " + job);
        }
        return job.result();
    }
}
