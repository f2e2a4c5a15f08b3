package io.asyncctx.testkit;

import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncJobPool;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncStatus;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.SignatureScheme;
import io.netty.handler.ssl.OpenSslAsyncPrivateKeyMethod;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ImmediateEventExecutor;

import java.util.Objects;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLHandshakeException;

/**
 * Threading: called by tcnative on a channel's event loop, which it blocks until the engine answers (EAGAIN is
 * retried every millisecond, up to a second; the wait for a completion is bounded by 30 seconds).
 *
 * <p>The naive baseline for comparisons: an {@link OpenSslAsyncPrivateKeyMethod} that calls an {@link AsyncEngine}
 * synchronously and waits for it on the event loop, the way a Netty server without offload behaves when its key
 * lives in an HSM or an accelerator. Every other connection of the loop waits too. For tests and measurements only;
 * never do this in a server. Use it with a keyless context ({@code io.asyncctx.netty.KeylessKeyManager}).
 */
public final class BlockingKeyMethod implements OpenSslAsyncPrivateKeyMethod {

    private final AsyncEngine engine;

    /** A key method that blocks on {@code engine}. */
    public BlockingKeyMethod(AsyncEngine engine) {
        this.engine = Objects.requireNonNull(engine, "engine");
    }

    @Override
    public Future<byte[]> sign(SSLEngine sslEngine, int signatureAlgorithm, byte[] input) {
        return run(KeyOperation.sign(SignatureScheme.ofCodePoint(signatureAlgorithm), input));
    }

    @Override
    public Future<byte[]> decrypt(SSLEngine sslEngine, byte[] input) {
        return run(KeyOperation.decrypt(input));
    }

    private Future<byte[]> run(KeyOperation operation) {
        CountDownLatch done = new CountDownLatch(1);
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        ctx.setCallback(arg -> {
            done.countDown();
            return 1;
        }, null);
        EngineSession session = engine.newSession(ctx, Runnable::run);
        try {
            AsyncJob<byte[]> job = new AsyncJob<>(new AsyncJobPool(1, Runnable::run), ctx,
                    j -> session.submit(j, operation));
            AsyncStartResult r = job.start();
            int eagain = 0;
            while (r == AsyncStartResult.PAUSE) {
                if (ctx.getStatus() == AsyncStatus.EAGAIN) {
                    if (++eagain > 1000) {
                        break;
                    }
                    TimeUnit.MILLISECONDS.sleep(1); // the baseline blocks the loop by design
                } else if (!done.await(30, TimeUnit.SECONDS)) {
                    break;
                }
                r = job.resume();
            }
            if (r == AsyncStartResult.FINISH) {
                return ImmediateEventExecutor.INSTANCE.newSucceededFuture(job.result());
            }
            Throwable cause = r == AsyncStartResult.ERR ? job.failure() : null;
            job.abandon();
            SSLHandshakeException e = new SSLHandshakeException("blocking engine call to '" + engine.name()
                    + "' ended with " + r);
            if (cause != null) {
                e.initCause(cause);
            }
            return ImmediateEventExecutor.INSTANCE.newFailedFuture(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return ImmediateEventExecutor.INSTANCE.newFailedFuture(e);
        } finally {
            session.close();
            ctx.close();
        }
    }
}
