package io.asyncctx.netty;

import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.KeySigner;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.EventLoop;
import io.netty.channel.IoEventLoop;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.FutureListener;
import io.netty.util.concurrent.Promise;

import java.security.GeneralSecurityException;
import javax.net.ssl.SSLHandshakeException;

/**
 * Binds one channel to an {@link AsyncSslContext}: the companion that the context's {@link SslHandler} puts right
 * before itself when it is added to a pipeline (or that puts the SslHandler right after itself when added first), and
 * it owns the connection's offload state (its
 * {@link io.asyncctx.AsyncWaitCtx}, opened at the first private-key operation on the channel's event loop). While an
 * operation waits (paused in its engine, queued for a free job, or backing off after EAGAIN) it holds the channel's
 * reads lazily: nothing changes until the channel has read one TLS record's worth during the wait; from then on the
 * outbound {@code read()} calls that SslHandler makes by itself stop here (one is kept and issued when the operation
 * resumes) and autoRead, when on, is suspended until the resume. A peer that floods a paused handshake gets no more
 * than one read batch and the kernel's socket buffers into the server; a peer that waits quietly keeps one read
 * outstanding, so that its leaving is noticed at once and its job cancelled (see {@link ReadHold}). When the channel
 * closes, or the handler is removed, it tears everything down: a paused job is abandoned and the engine told, the wait
 * fds are unregistered before they are closed. With {@link OffloadConfig#handshakeStepsPerLoopTurn()} set, a read of a
 * handshaking channel over the loop's budget for the current loop iteration is kept here and passed on in a later
 * iteration, with the user events that arrived behind it ({@link KeptReads}).
 *
 * <p>Threading: not sharable; one instance per channel. All methods run on the channel's event loop; operations
 * submitted from another thread are moved there.
 */
final class AsyncOffloadHandler extends ChannelDuplexHandler {

    private final AsyncSslContext context;
    private final SslHandler sslHandler;
    private Channel channel;
    private EventLoop loop;
    private AsyncOffloadConnection connection;
    private boolean closed;
    /** True once bound to the context's key method (async path on an IoEventLoop). */
    private boolean bound;
    private ChannelHandlerContext ctx;
    private ReadHold readHold;
    /** Reads kept over the loop's handshake budget; null when the budget is off. */
    private KeptReads keptReads;
    private boolean flushHeld;
    /** Runs after the listeners of the completed operation; queues the held flush behind SslHandler's resume task. */
    private final Runnable issueHeldFlushAfterResume = () -> loop.execute(this::flushIfHeld);
    private Throwable operationFailure;
    private final FutureListener<byte[]> onOperationDone = this::operationDone;

    /** The context whose handler this is. */
    AsyncSslContext context() {
        return context;
    }

    AsyncOffloadHandler(AsyncSslContext context, SslHandler sslHandler) {
        this.context = context;
        this.sslHandler = sslHandler;
    }

    /** The SslHandler this handler manages (the channel's TLS). */
    SslHandler sslHandler() {
        return sslHandler;
    }

    /** The connection's offload state, or null before its first private-key operation. Event loop only. */
    AsyncOffloadConnection connection() {
        return connection;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
        channel = ctx.channel();
        loop = channel.eventLoop();
        readHold = new ReadHold(channel);
        if (ctx.pipeline().context(sslHandler) == null) {
            ctx.pipeline().addAfter(ctx.name(), null, sslHandler);
        }
        if (!context.isAsync()) {
            return;
        }
        if (!(loop instanceof IoEventLoop)) {
            // Not bound: the key method offloads this engine's operations unbound (no read hold), as for an engine
            // wrapped in a handler of the caller's own. Said once per context.
            context.method().noteOnce("loop:" + loop.getClass().getName(), System.Logger.Level.WARNING,
                    "channels on event loop " + loop.getClass().getName() + " (not an IoEventLoop) cannot bind "
                    + "their offload state: their handshakes are offloaded unbound, without the read hold while an "
                    + "operation waits; create the group with new MultiThreadIoEventLoopGroup(n, "
                    + "EpollIoHandler.newFactory()) (or IoUringIoHandler, NioIoHandler)");
            return;
        }
        int steps = context.config().handshakeStepsPerLoopTurn();
        HandshakeTurns turns = steps > 0 ? LoopState.of((IoEventLoop) loop).turns : null;
        if (turns != null) {
            keptReads = new KeptReads(ctx, turns, steps, () -> !sslHandler.handshakeFuture().isDone(), readHold);
        }
        context.method().bind(sslHandler.engine(), this);
        bound = true;
        channel.closeFuture().addListener(f -> teardown());
        sslHandler.handshakeFuture().addListener(f -> {
            if (!f.isSuccess() && operationFailure != null) {
                explain(f.cause(), operationFailure);
            }
        });
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        if (keptReads != null) {
            if (ctx.channel().isActive()) {
                keptReads.forwardAll();
            } else {
                keptReads.releaseAll();
            }
        }
        if (flushHeld) {
            flushHeld = false;
            ctx.flush();
        }
        teardown();
    }

    /** Runs one private-key operation of this channel's handshake; the future completes on the event loop. */
    Future<byte[]> submit(KeyOperation operation) {
        if (!loop.inEventLoop()) {
            Promise<byte[]> promise = loop.newPromise();
            loop.execute(() -> submit(operation).addListener(f -> {
                if (f.isSuccess()) {
                    promise.trySuccess((byte[]) f.getNow());
                } else {
                    promise.tryFailure(f.cause());
                }
            }));
            return promise;
        }
        if (closed) {
            return loop.newFailedFuture(new SSLHandshakeException("the channel closed before its private-key "
                    + "operation could start"));
        }
        Future<byte[]> result;
        try {
            if (connection == null) {
                // One handshake, one certificate, one key: the first operation's engine serves the connection.
                connection = AsyncOffloadConnection.open((IoEventLoop) loop, context.method().engineFor(operation),
                        context.config());
            }
            result = connection.submit(operation);
        } catch (RuntimeException e) {
            // Netty's key method only expects a future: turn a refusal into a failed handshake with our reason.
            SSLHandshakeException failure = new SSLHandshakeException("cannot offload the private-key operation: "
                    + e.getMessage());
            context.method().noteOnce("submit:" + e.getClass().getName(), System.Logger.Level.WARNING,
                    "handshakes fail: cannot offload the private-key operation to engine '" + context.engine().name()
                    + "': " + e);
            failure.initCause(e);
            return failed(failure);
        }
        if (!result.isDone()) {
            readHold.hold();
            result.addListener(onOperationDone);
            return result;
        }
        if (!result.isSuccess()) {
            operationFailure = result.cause();
        }
        return result;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (readHold != null && msg instanceof ByteBuf b) {
            readHold.onRead(b.readableBytes());
        }
        if (keptReads != null && keptReads.keep(msg)) {
            return;
        }
        ctx.fireChannelRead(msg);
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        if (keptReads != null && keptReads.isKeeping()) {
            return; // the replay of the kept reads fires its own
        }
        ctx.fireChannelReadComplete();
    }

    /** While reads are kept, user events (an input shutdown) wait behind them, so that they keep the socket's order. */
    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (keptReads != null && keptReads.keepEvent(evt)) {
            return;
        }
        ctx.fireUserEventTriggered(evt);
    }

    /** The channel this handler is bound to (null before it is added). */
    Channel channel() {
        return channel;
    }

    /** Reads this channel kept over the loop's handshake budget so far; 0 when the budget is off. Event loop only. */
    long keptReads() {
        return keptReads == null ? 0 : keptReads.keptTotal();
    }

    /** This channel's reads kept over the loop's handshake budget; null when the budget is off. Event loop; tests. */
    KeptReads keptReadsState() {
        return keptReads;
    }

    /**
     * Holds flushes while an operation waits: SslHandler flushes the part of the server's flight written before the
     * key operation (ServerHello, EncryptedExtensions, Certificate) when its read completes, and the rest after the
     * resume; holding the first makes it one send instead of two (issue 12: ~6 us of loop CPU per handshake, and one
     * read less for the client). The held flush is issued after the resume (two loop tasks later, after SslHandler's
     * own resume task has flushed everything), so nothing written stays unflushed.
     */
    @Override
    public void flush(ChannelHandlerContext ctx) {
        if (readHold != null && readHold.isHolding()) {
            flushHeld = true;
            return;
        }
        flushHeld = false;
        ctx.flush();
    }

    private void flushIfHeld() {
        if (flushHeld) {
            flushHeld = false;
            if (ctx != null && !closed) {
                ctx.flush();
            }
        }
    }

    @Override
    public void read(ChannelHandlerContext ctx) {
        if (readHold == null) {
            ctx.read();
        } else {
            readHold.read(ctx);
        }
    }

    /** True while an operation of this channel waits and its reads are held. Event loop only. */
    boolean isHoldingReads() {
        return readHold != null && readHold.isHolding();
    }

    /** A failed future of the channel's event loop. */
    Future<byte[]> failed(Throwable cause) {
        operationFailure = cause;
        return loop.newFailedFuture(cause);
    }

    /** Performs a cheap operation on the event loop (under the context's inline policy). */
    Future<byte[]> performInline(KeySigner signer, KeyOperation operation) {
        LoopState.of((IoEventLoop) loop).recorder(context.config().metrics(), context.engine()).inlineOperation();
        try {
            return loop.newSucceededFuture(signer.perform(operation));
        } catch (GeneralSecurityException | RuntimeException e) {
            operationFailure = e;
            return loop.newFailedFuture(e);
        }
    }

    private void operationDone(Future<byte[]> f) {
        if (!f.isSuccess()) {
            operationFailure = f.cause();
        }
        readHold.release(ctx);
        if (flushHeld && !readHold.isHolding()) {
            loop.execute(issueHeldFlushAfterResume);
        }
    }

    /**
     * BoringSSL reports a failed key operation as PRIVATE_KEY_OPERATION_FAILED and Netty drops the Java cause; attach
     * ours (engine name, timeout, retries) to the handshake failure so that logs say what happened.
     */
    static void explain(Throwable handshakeFailure, Throwable operationFailure) {
        if (handshakeFailure == null || handshakeFailure == operationFailure) {
            return;
        }
        Throwable root = handshakeFailure;
        while (root.getCause() != null && root.getCause() != root) {
            if (root.getCause() == operationFailure) {
                return;
            }
            root = root.getCause();
        }
        try {
            root.initCause(operationFailure);
        } catch (IllegalStateException | IllegalArgumentException e) {
            handshakeFailure.addSuppressed(operationFailure);
        }
    }

    private void teardown() {
        if (closed) {
            return;
        }
        closed = true;
        if (keptReads != null) {
            keptReads.releaseAll();
        }
        if (bound) {
            context.method().unbind(sslHandler.engine());
        }
        if (connection != null) {
            connection.close();
        }
    }

}
