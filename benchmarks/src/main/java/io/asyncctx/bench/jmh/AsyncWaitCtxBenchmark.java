package io.asyncctx.bench.jmh;

import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncJobPool;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncStatus;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.ChangedFds;
import io.asyncctx.WaitFd;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.TearDown;

import java.util.concurrent.TimeUnit;

/**
 * The wait-fd table of {@link AsyncWaitCtx} with {@code fds} live fds (one per engine key; the key looked up is the
 * last one set, the worst case of the linear search). The fd numbers are plain integers: the table never touches them.
 *
 * <ul>
 *   <li>{@link #clearSetChangedResume}: one pause/resume turn of an fd that changes: clear the old fd (it becomes
 *       deleted), set a new one (added), read {@link AsyncWaitCtx#getChangedFds()} (both lists), then resume the paused
 *       job, which forgets the change set (a spurious resume: the job stays paused, so the ctx keeps its job).</li>
 *   <li>{@link #setThenClearFd}: set an fd and clear it before any resume (it is removed outright).</li>
 *   <li>{@link #getFd}, {@link #getAllFds}: the lookups.</li>
 * </ul>
 *
 * <p>Threading: one benchmark thread, which is the ctx's owner.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class AsyncWaitCtxBenchmark extends AbstractBenchmark {

    @Param({"1", "4"})
    public int fds;

    private AsyncWaitCtx ctx;
    private AsyncJob<byte[]> pausedJob;
    private Object[] keys;
    private Object key;
    private final Object extraKey = new Object();
    private int[] all;
    private int nextFd = 1000;

    @Setup(Level.Trial)
    public void setUp() {
        ctx = new AsyncWaitCtx();
        keys = new Object[fds];
        for (int i = 0; i < fds; i++) {
            keys[i] = new Object();
            ctx.setWaitFd(keys[i], 100 + i, null, null);
        }
        key = keys[fds - 1];
        all = new int[fds];
        AsyncJobPool pool = new AsyncJobPool(16, Runnable::run);
        pausedJob = new AsyncJob<>(pool, ctx, j -> ctx.setStatus(AsyncStatus.OK));
        if (pausedJob.start() != AsyncStartResult.PAUSE || pausedJob.resume() != AsyncStartResult.PAUSE) {
            throw new IllegalStateException("the job did not stay paused: " + pausedJob);
        }
        if (ctx.numAddedFds() != 0 || ctx.getAllFds(null) != fds) {
            throw new IllegalStateException("unexpected ctx after the first resume: " + ctx);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pausedJob.abandon();
        ctx.close();
    }

    @Benchmark
    public ChangedFds clearSetChangedResume() {
        ctx.clearFd(key);
        int fd = nextFd;
        nextFd = fd == 2000 ? 1000 : fd + 1;
        ctx.setWaitFd(key, fd, null, null);
        ChangedFds changed = ctx.getChangedFds();
        pausedJob.resume();
        return changed;
    }

    @Benchmark
    public boolean setThenClearFd() {
        ctx.setWaitFd(extraKey, 999, null, null);
        return ctx.clearFd(extraKey);
    }

    @Benchmark
    public WaitFd getFd() {
        return ctx.getFd(key);
    }

    @Benchmark
    public int getAllFds() {
        return ctx.getAllFds(all);
    }
}
