package io.asyncctx.netty;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.ssl.ReferenceCountedOpenSslEngine;
import io.netty.handler.ssl.SslHandler;

import java.util.NoSuchElementException;
import java.util.concurrent.Executor;
import javax.net.ssl.SSLEngine;

/**
 * The {@link SslHandler} that {@link AsyncSslContext#newHandler} returns: a stock SslHandler that, when added to a
 * pipeline, puts its {@link AsyncOffloadHandler} right before itself, which binds the channel's offload state and holds
 * the reads and flushes that SslHandler issues by itself while an operation waits (they travel towards the head, so
 * only a handler before SslHandler sees them). Removing this handler removes its companion. After a TLS 1.3 server
 * handshake it sends what BoringSSL queued (the session tickets) at once ({@link SessionTicketFlusher}). Either may be added first:
 * a companion added first adds this handler after itself.
 *
 * <p>Threading: not sharable; one instance per channel; pipeline callbacks run on the channel's event loop.
 */
final class OffloadingSslHandler extends SslHandler {

    private final AsyncOffloadHandler offload;

    OffloadingSslHandler(AsyncSslContext context, SSLEngine engine, boolean startTls, Executor executor) {
        super(engine, startTls, executor);
        this.offload = new AsyncOffloadHandler(context, this);
    }

    /** The companion handler that binds the offload state and holds reads. */
    AsyncOffloadHandler offload() {
        return offload;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) throws Exception {
        ChannelPipeline pipeline = ctx.pipeline();
        if (pipeline.context(offload) == null) {
            pipeline.addBefore(ctx.name(), null, offload);
        }
        super.handlerAdded(ctx);
        if (!engine().getUseClientMode() && engine() instanceof ReferenceCountedOpenSslEngine openssl) {
            // TLS 1.3 tickets leave with the handshake, whatever their size, not with the server's first write: a
            // client that reads first (s_client, gnutls-cli) would otherwise have none (SessionTicketFlusher).
            handshakeFuture().addListener(f -> {
                if (f.isSuccess() && "TLSv1.3".equals(openssl.getSession().getProtocol())) {
                    SessionTicketFlusher.flush(openssl, () -> flushThroughThisHandler(ctx),
                            ctx.channel()::isActive);
                }
            });
        }
    }

    private void flushThroughThisHandler(ChannelHandlerContext ctx) {
        try {
            flush(ctx); // SslHandler's own flush: wraps what BoringSSL queued and writes it
        } catch (Exception e) {
            ctx.fireExceptionCaught(e);
        }
    }

    @Override
    public void handlerRemoved0(ChannelHandlerContext ctx) throws Exception {
        try {
            super.handlerRemoved0(ctx);
        } finally {
            // Removed while the channel is registered (a framework ending TLS, or a close still on its way): take the
            // companion out too. Once deregistered, the pipeline is being destroyed and removes it by itself.
            if (ctx.channel().isRegistered() && ctx.pipeline().context(offload) != null) {
                try {
                    ctx.pipeline().remove(offload);
                } catch (NoSuchElementException e) {
                    // removed meanwhile
                }
            }
        }
    }
}
