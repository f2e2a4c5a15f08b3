package io.asyncctx.quic;

import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.netty.AsyncOffloadConnection;
import io.asyncctx.netty.AsyncOffloadLoops;
import io.netty.channel.EventLoop;
import io.netty.channel.IoEventLoop;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.util.concurrent.Future;

import java.security.GeneralSecurityException;
import javax.net.ssl.SSLHandshakeException;

/**
 * One QUIC connection's offload state: the {@link AsyncOffloadConnection} (and so the {@link io.asyncctx.AsyncWaitCtx})
 * of its {@link QuicChannel}, opened at the first private-key operation on the channel's event loop and closed with the
 * channel, which abandons a job in flight and releases its wait fds.
 *
 * <p>Threading: made on the QUIC channel's event loop (in the codec's engine provider); {@link #submit},
 * {@link #performInline} and {@link #close} run on that loop; the counters may be read from any thread.
 */
final class QuicOffloadBinding {

    private final QuicAsyncSslContext context;
    private final QuicChannel channel;
    private AsyncOffloadConnection connection;
    private boolean closed;
    private volatile long operations;
    private volatile long inlineOperations;

    QuicOffloadBinding(QuicAsyncSslContext context, QuicChannel channel) {
        this.context = context;
        this.channel = channel;
    }

    QuicChannel channel() {
        return channel;
    }

    /** Key operations this connection submitted (each ran as a job). Any thread. */
    long operations() {
        return operations;
    }

    /** Key operations this connection signed inline on its loop (under the context's inline policy). Any thread. */
    long inlineOperations() {
        return inlineOperations;
    }

    /**
     * Runs one key operation of this connection's handshake. Called inside a BoringSSL task batch on the channel's
     * loop; when the operation pauses, {@code redrive} runs the batch again once the operation has completed.
     */
    Future<byte[]> submit(KeyOperation operation, Runnable redrive) {
        EventLoop loop = channel.eventLoop();
        String refusal = refusal(loop);
        if (refusal != null) {
            return failed(loop, refusal);
        }
        if (redrive == null) {
            return failed(loop, "the QUIC codec's sslTaskExecutor is not this context's, so a paused handshake would "
                    + "not resume; let QuicAsyncSslContext.configure(codecBuilder) set it and do not replace it");
        }
        IoEventLoop ioLoop = (IoEventLoop) loop;
        Future<byte[]> result;
        operations++;
        try {
            if (connection == null) {
                connection = AsyncOffloadConnection.open(ioLoop, context.engine(), context.config());
            }
            result = connection.submit(operation);
        } catch (RuntimeException e) {
            SSLHandshakeException failure = new SSLHandshakeException("cannot offload the private-key operation: "
                    + e.getMessage());
            failure.initCause(e);
            return loop.newFailedFuture(failure);
        }
        if (!result.isDone()) {
            // BoringSSL learns of the result only when the channel drives the handshake again. This listener runs before
            // Netty's (added after we return), but the batch only queues the channel's send on the loop, which runs
            // after every listener, so the send sees the result. The batch runs through the executor, as the codec runs
            // it, so that a key operation made by the re-run finds it as RedriveExecutor.current() and can pause too.
            result.addListener(f -> {
                if (!closed) {
                    context.redriveExecutor().execute(redrive);
                }
            });
        }
        return result;
    }

    /**
     * Signs a cheap operation right here on the channel's loop (the context's inline policy chose its scheme): no job,
     * no ctx, no wait fd; the returned future is already complete, so BoringSSL goes on within the same task batch.
     * Counted as {@code operations.inline} in the loop's cached metrics recorder (tagged {@code protocol=quic}).
     */
    Future<byte[]> performInline(KeySigner signer, KeyOperation operation) {
        EventLoop loop = channel.eventLoop();
        String refusal = refusal(loop);
        if (refusal != null) {
            return failed(loop, refusal);
        }
        inlineOperations++;
        AsyncOffloadLoops.recorder((IoEventLoop) loop, context.config().metrics(), context.engine()).inlineOperation();
        try {
            return loop.newSucceededFuture(signer.perform(operation));
        } catch (GeneralSecurityException | RuntimeException e) {
            SSLHandshakeException failure = new SSLHandshakeException("the inline private-key operation ("
                    + operation + ") failed: " + e);
            failure.initCause(e);
            return loop.newFailedFuture(failure);
        }
    }

    /** Why no key operation can run on {@code loop} now, or null when it can. */
    private String refusal(EventLoop loop) {
        if (!loop.inEventLoop()) {
            return "the key operation was called off the QUIC channel's event loop; let "
                    + "QuicAsyncSslContext.configure(codecBuilder) set the codec's sslTaskExecutor and do not replace it";
        }
        if (closed) {
            return "the QUIC connection closed before its private-key operation could start";
        }
        if (!(loop instanceof IoEventLoop)) {
            return "the QUIC channel's event loop " + loop.getClass().getName() + " is not an IoEventLoop; create the "
                    + "group with new MultiThreadIoEventLoopGroup(n, EpollIoHandler.newFactory()) (or IoUringIoHandler, "
                    + "NioIoHandler)";
        }
        return null;
    }

    /** Closes the offload state (the channel closed). Loop thread; idempotent. */
    void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (connection != null) {
            connection.close();
        }
    }

    private static Future<byte[]> failed(EventLoop loop, String message) {
        return loop.newFailedFuture(new SSLHandshakeException(message));
    }
}
