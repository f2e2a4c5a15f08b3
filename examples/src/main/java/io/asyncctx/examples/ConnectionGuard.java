package io.asyncctx.examples;

import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http2.DefaultHttp2GoAwayFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.util.concurrent.ScheduledFuture;

import java.util.concurrent.TimeUnit;

/**
 * One connection's life after accept, right behind its TLS handler: a failed handshake is counted and logged in one
 * line ({@link FailedHandshakes}) instead of travelling down the pipeline as an exception with its stack trace; an
 * established connection idle for the idle timeout (no request in flight, no bytes either way) is closed; and when the
 * server drains, the connection finishes what it has and closes:
 * <ul>
 *   <li>handshaking: the handshake goes on (a paused one too); once the protocol is chosen it drains as below;</li>
 *   <li>HTTP/1.1: a request in flight is answered with {@code Connection: close}, then closed; an idle connection is
 *       closed once it has been quiet for {@link #QUIET_NANOS} (a request already on its way is still answered);</li>
 *   <li>HTTP/2: a GOAWAY with the largest stream id announces the shutdown (the client opens no new streams), then,
 *       {@link #QUIET_NANOS} later, Netty's graceful close sends the final GOAWAY and closes once the open streams are
 *       done (at most the shutdown grace).</li>
 * </ul>
 *
 * <p>Threading: one instance per connection; every method runs on the connection's event loop (HTTP/2 streams share
 * it).
 */
final class ConnectionGuard extends ChannelDuplexHandler {

    /** How long a draining connection must be quiet before it is closed as idle: a request on its way gets in. */
    static final long QUIET_NANOS = TimeUnit.MILLISECONDS.toNanos(1000);

    enum Phase {
        /** TLS handshake in progress. */
        HANDSHAKING,
        /** HTTP/1.1 over TLS. */
        HTTP1,
        /** HTTP/2 over TLS. */
        HTTP2
    }

    private final Connections connections;
    private ChannelHandlerContext ctx;
    private Phase phase = Phase.HANDSHAKING;
    private int inFlight;
    private long lastActive = System.nanoTime();
    private boolean draining;
    private boolean goAwaySent;
    private ScheduledFuture<?> drainCheck;

    ConnectionGuard(Connections connections) {
        this.connections = connections;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
        lastActive = System.nanoTime();
        super.channelRead(ctx, msg);
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
        if (evt instanceof SslHandshakeCompletionEvent done && !done.isSuccess()) {
            connections.failures().failed(ctx.channel().remoteAddress(), done.cause());
            ctx.close();
            return; // handled: the handlers behind would log it again, with a stack trace
        }
        if (evt instanceof IdleStateEvent) {
            if (phase != Phase.HANDSHAKING && inFlight == 0) {
                ctx.channel().close(); // HTTP/2: Netty's codec sends GOAWAY first
            }
            return;
        }
        super.userEventTriggered(ctx, evt);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        // During the handshake the failure also arrives as a failed SslHandshakeCompletionEvent, logged there in one
        // line; afterwards it is a peer's reset or a record that does not decrypt: routine, close without a trace.
        ctx.close();
    }

    /** The handshake succeeded and the protocol's handlers are in place. */
    void established(Phase protocol) {
        phase = protocol;
        lastActive = System.nanoTime();
        if (draining) {
            drain();
        }
    }

    /** A request arrived (HTTP/1.1, or an HTTP/2 stream). */
    void requestStarted() {
        inFlight++;
        lastActive = System.nanoTime();
        connections.requestReceived();
    }

    /** Its response was written (or failed to be: the connection is gone). */
    void requestDone(boolean written) {
        inFlight--;
        lastActive = System.nanoTime();
        if (written) {
            connections.requestAnswered();
        }
        if (draining && phase == Phase.HTTP1 && inFlight == 0) {
            scheduleQuietClose(); // the response carried Connection: close; closes with it in any case
        }
    }

    /** Whether responses should end the connection (the server drains). */
    boolean draining() {
        return draining;
    }

    /** The server drains: called before this guard is in a pipeline (accepted during the start of a drain). */
    void markDraining() {
        draining = true;
    }

    /** Finish what is in flight, then close (see the class comment). */
    void drain() {
        draining = true;
        if (ctx == null || !ctx.channel().isActive()) {
            return;
        }
        switch (phase) {
            case HANDSHAKING -> {
                // goes on; established() drains once the protocol is set up
            }
            case HTTP1 -> {
                if (inFlight == 0) {
                    scheduleQuietClose();
                }
            }
            case HTTP2 -> {
                if (inFlight == 0 && System.nanoTime() - lastActive >= QUIET_NANOS) {
                    ctx.channel().close(); // GOAWAY with the last stream, then close
                } else if (!goAwaySent) {
                    goAwaySent = true;
                    // Integer.MAX_VALUE extra ids: the largest stream id, "shutting down, open no new streams"
                    ctx.channel().writeAndFlush(new DefaultHttp2GoAwayFrame(Http2Error.NO_ERROR)
                            .setExtraStreamIds(Integer.MAX_VALUE));
                    ctx.executor().schedule(() -> {
                        ctx.channel().close(); // the final GOAWAY; closes when the streams are done
                    }, QUIET_NANOS, TimeUnit.NANOSECONDS);
                }
            }
            default -> throw new IllegalStateException(phase.toString());
        }
    }

    private void scheduleQuietClose() {
        if (drainCheck != null && !drainCheck.isDone()) {
            return;
        }
        long wait = QUIET_NANOS - (System.nanoTime() - lastActive);
        if (inFlight == 0 && wait <= 0) {
            ctx.channel().close();
            return;
        }
        drainCheck = ctx.executor().schedule(() -> {
            drainCheck = null;
            if (inFlight == 0) {
                scheduleQuietClose();
            }
        }, Math.max(wait, 1), TimeUnit.NANOSECONDS);
    }
}
