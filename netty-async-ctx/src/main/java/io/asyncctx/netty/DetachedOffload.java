package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.KeyOperation;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.handler.ssl.ReferenceCountedOpenSslEngine;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ImmediateEventExecutor;
import io.netty.util.concurrent.Promise;

import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLHandshakeException;

/**
 * Key operations of engines that no channel has bound (an {@link SSLEngine} from {@link AsyncSslContext#newEngine}
 * in an {@code SslHandler} of the caller's own, or a channel on a loop that is not an {@link IoEventLoop}). Each runs
 * as an ordinary {@link AsyncOffloadConnection} on one small loop of this library's own (one daemon thread, callback
 * notification), so the engine, deadline, EAGAIN retries, fallback, metrics and JFR events are those of the bound
 * path. Its result is handed to BoringSSL from that loop while holding the {@code SSLEngine}'s monitor, the lock under
 * which Netty frees the engine, and only if the engine is still alive; Netty's {@code SslHandler} then moves the rest
 * of the handshake back to the channel's own loop (its delegated-task path). The loop starts with the first operation
 * and stops after {@link #IDLE_MILLIS} without one, so no thread stays behind an idle server. No channel tells this
 * path that its peer left: an operation whose engine Netty has freed (its handler was removed when the channel
 * closed) is found within {@link #SWEEP_MILLIS} and cancelled, as the bound path cancels on close.
 *
 * <p>Threading: {@link #run} may be called from any thread; everything else runs on the detached loop.
 */
final class DetachedOffload {

    static final long IDLE_MILLIS = 2_000;

    private static final Object LOCK = new Object();
    private static MultiThreadIoEventLoopGroup group;
    private static IoEventLoop loop;
    private static int users;
    private static long generation;
    /** How often operations are checked for a freed engine (see {@link #sweep()}). */
    static final long SWEEP_MILLIS = 200;
    /** The operations out now; detached loop only. */
    private static final java.util.Set<Detached> OPEN = new java.util.HashSet<>();
    /** The periodic {@link #sweep()} while operations are out; detached loop only. */
    private static io.netty.util.concurrent.ScheduledFuture<?> sweep;
    /** Operations cancelled because their engine was freed. */
    private static final java.util.concurrent.atomic.LongAdder CANCELLED = new java.util.concurrent.atomic.LongAdder();
    /** Results dropped because the handler had freed the engine meanwhile. */
    private static final java.util.concurrent.atomic.LongAdder DROPPED = new java.util.concurrent.atomic.LongAdder();

    private DetachedOffload() {
    }

    /**
     * Runs {@code op} on {@code engine} for the unbound {@code sslEngine}; {@code done} runs once the operation has
     * ended (completed, failed or abandoned), before the result is handed over.
     *
     * @return a future completed (on the detached loop, under the engine's monitor) only while {@code sslEngine} is
     *     alive: when Netty has freed it meanwhile, nothing is left to resume and the future stays pending
     */
    static Future<byte[]> run(AsyncEngine engine, OffloadConfig config, KeyOperation op, SSLEngine sslEngine,
                              Runnable done) {
        Promise<byte[]> outer = ImmediateEventExecutor.INSTANCE.newPromise();
        IoEventLoop l = acquire();
        try {
            l.execute(() -> start(l, engine, config, op, sslEngine, done, outer));
        } catch (RejectedExecutionException e) {
            release(l);
            done.run();
            SSLHandshakeException failure = new SSLHandshakeException("cannot offload the private-key operation: "
                    + "the detached offload loop is shutting down (the JVM is exiting?)");
            failure.initCause(e);
            outer.setFailure(failure);
        }
        return outer;
    }

    private static void start(IoEventLoop l, AsyncEngine engine, OffloadConfig config, KeyOperation op,
                              SSLEngine sslEngine, Runnable done, Promise<byte[]> outer) {
        AsyncOffloadConnection c;
        try {
            c = AsyncOffloadConnection.open(l, engine, config);
        } catch (RuntimeException e) {
            release(l);
            done.run();
            SSLHandshakeException failure = new SSLHandshakeException("cannot offload the private-key operation: "
                    + e.getMessage());
            failure.initCause(e);
            deliver(outer, sslEngine, null, failure);
            return;
        }
        Detached d = new Detached(c, sslEngine);
        OPEN.add(d);
        if (sweep == null) {
            sweep = l.scheduleAtFixedRate(DetachedOffload::sweep, SWEEP_MILLIS, SWEEP_MILLIS, TimeUnit.MILLISECONDS);
        }
        c.submit(op).addListener((Future<byte[]> f) -> {
            OPEN.remove(d);
            if (OPEN.isEmpty() && sweep != null) {
                sweep.cancel(false);
                sweep = null;
            }
            c.close();
            release(l);
            done.run();
            deliver(outer, sslEngine, f.isSuccess() ? f.getNow() : null, f.cause());
        });
    }

    /**
     * Cancels the operations whose engine its handler has freed (the peer or the framework closed the channel): the
     * library cannot see that channel's close, so it looks for freed engines every {@link #SWEEP_MILLIS} while
     * operations are out. Closing the connection abandons the job and tells the engine to drop the work.
     */
    private static void sweep() {
        for (Detached d : OPEN.toArray(new Detached[0])) {
            if (d.sslEngine instanceof ReferenceCountedOpenSslEngine e && e.sslPointer() == 0) {
                CANCELLED.increment();
                d.connection.close();
            }
        }
    }

    /** One operation out on the detached loop. */
    private record Detached(AsyncOffloadConnection connection, SSLEngine sslEngine) {
    }

    private static void deliver(Promise<byte[]> outer, SSLEngine sslEngine, byte[] result, Throwable cause) {
        synchronized (sslEngine) {
            if (sslEngine instanceof ReferenceCountedOpenSslEngine e && e.sslPointer() == 0) {
                if (cause == null) {
                    DROPPED.increment(); // a signature nobody can use; a failure (the sweep's cancel) is not counted
                }
                return; // freed by its handler: BoringSSL must not be called back
            }
            if (cause == null) {
                outer.trySuccess(result);
            } else {
                outer.tryFailure(cause);
            }
        }
    }

    private static IoEventLoop acquire() {
        synchronized (LOCK) {
            if (group == null) {
                group = new MultiThreadIoEventLoopGroup(1, new DefaultThreadFactory("async-ctx-detached", true),
                        NioIoHandler.newFactory());
                loop = (IoEventLoop) group.next();
            }
            users++;
            generation++;
            return loop;
        }
    }

    private static void release(IoEventLoop l) {
        long gen;
        synchronized (LOCK) {
            users--;
            if (users > 0 || loop != l) {
                return;
            }
            gen = generation;
        }
        try {
            l.schedule(() -> stopIfIdle(l, gen), IDLE_MILLIS, TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException e) {
            // shutting down already
        }
    }

    private static void stopIfIdle(IoEventLoop l, long gen) {
        MultiThreadIoEventLoopGroup g;
        synchronized (LOCK) {
            if (loop != l || users > 0 || generation != gen) {
                return;
            }
            g = group;
            group = null;
            loop = null;
        }
        g.shutdownGracefully(0, 0, TimeUnit.SECONDS);
    }

    /** Operations cancelled so far because the engine they were for had been freed. Any thread. */
    static long cancelledOperations() {
        return CANCELLED.sum();
    }

    /** Results dropped so far because the engine they were for had been freed (the peer left). Any thread. */
    static long droppedResults() {
        return DROPPED.sum();
    }

    /** True while the detached loop runs (an operation in flight, or less than {@link #IDLE_MILLIS} since). Tests. */
    static boolean isRunning() {
        synchronized (LOCK) {
            return group != null;
        }
    }
}
