package io.asyncctx.examples;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.ReferenceCountedOpenSslEngine;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.internal.tcnative.SSL;

import javax.net.ssl.SSLEngine;

/**
 * Sends the TLS 1.3 session tickets right after the handshake, as nginx does, instead of with the server's first
 * application write.
 *
 * <p>Whose behaviour this is: BoringSSL's (linked into netty-tcnative). Its TLS 1.3 server queues NewSessionTicket
 * after reading the client's Finished but does not flush it "until the server performs a write", and asks callers that
 * want the tickets out earlier to do a zero-byte {@code SSL_write}. Netty never makes one (its engine skips empty
 * buffers), and netty-async-ctx does not touch the record layer. So a client that saves its session before sending a
 * request ({@code gnutls-cli --resume}) has no ticket and never resumes. This handler makes the zero-byte write once
 * the handshake succeeded, then flushes the ticket records through {@link SslHandler} and removes itself.
 *
 * <p>Threading: one instance per channel, on its event loop.
 */
final class SessionTicketFlusher extends ChannelInboundHandlerAdapter {

    /** tcnative refuses a null buffer even for zero bytes: one byte of native memory for the process, never freed. */
    private static final ByteBuf EMPTY_NATIVE = Unpooled.unreleasableBuffer(Unpooled.directBuffer(1, 1));

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
        if (evt instanceof SslHandshakeCompletionEvent done) {
            ctx.pipeline().remove(this);
            SslHandler ssl = ctx.pipeline().get(SslHandler.class);
            if (done.isSuccess() && ssl != null && "TLSv1.3".equals(ssl.engine().getSession().getProtocol())) {
                SSLEngine engine = ssl.engine();
                if (engine instanceof ReferenceCountedOpenSslEngine openssl) {
                    synchronized (openssl) { // the engine's own lock, as its wrap and unwrap take it
                        long pointer = openssl.sslPointer();
                        if (pointer != 0 && EMPTY_NATIVE.hasMemoryAddress()) {
                            SSL.writeToSSL(pointer, EMPTY_NATIVE.memoryAddress(), 0); // BoringSSL's documented way to flush the tickets
                        }
                    }
                    ctx.writeAndFlush(Unpooled.EMPTY_BUFFER); // SslHandler's wrap moves the records to the socket
                }
            }
        }
        ctx.fireUserEventTriggered(evt);
    }
}
