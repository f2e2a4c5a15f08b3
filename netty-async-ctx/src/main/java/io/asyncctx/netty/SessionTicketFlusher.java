package io.asyncctx.netty;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.ReferenceCountedOpenSslEngine;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.internal.tcnative.SSL;

/**
 * Sends the TLS 1.3 session tickets (and whatever else BoringSSL queued after the handshake) right after the
 * handshake, completely, as nginx does, instead of with the server's first application write.
 *
 * <p>Whose behaviour this is: BoringSSL's (linked into netty-tcnative). Its TLS 1.3 server queues NewSessionTicket
 * after reading the client's Finished but does not flush it "until the server performs a write", and asks callers that
 * want the tickets out earlier to do a zero-byte {@code SSL_write}. Netty never makes one (its engine skips empty
 * buffers). So a client that reads before it writes ({@code openssl s_client}, {@code gnutls-cli --resume}) has no
 * ticket and never resumes.
 *
 * <p>The handlers that {@link AsyncSslContext} makes do this by themselves. Add this handler right after a stock
 * Netty {@link SslHandler} (a context of Netty's own, with BoringSSL) for the same behaviour there; it removes itself
 * after the handshake. It does nothing for other engines (the JDK's) or TLS 1.2.
 *
 * <p>Why one zero-byte write is not enough: BoringSSL writes its own records (handshake, tickets, alerts) into the
 * network side of a BIO pair whose buffer is Netty's "non-application" buffer, 2,048 bytes by default
 * ({@code io.netty.handler.ssl.openssl.bioNonApplicationBufferSize}). A ticket holds the client's certificate chain:
 * with an RSA-2048 or RSA-4096 client certificate the ticket record is 2,141 to 2,370 bytes. The write moves 2,048 of
 * them into the BIO and returns {@code SSL_ERROR_WANT_WRITE} with the tail still in BoringSSL's pending flight; the
 * tail then waits for the server's next write, and a client that reads first hangs. So this handler repeats: a
 * zero-byte write, then an empty flush through {@link SslHandler} (whose wrap moves the BIO's bytes to the socket),
 * until the write no longer asks for room: every queued byte has left, whatever the tickets' size.
 *
 * <p>Threading: not sharable; one instance per channel, called on its event loop.
 */
public final class SessionTicketFlusher extends ChannelInboundHandlerAdapter {

    /** tcnative refuses a null buffer even for zero bytes: one byte of native memory for the process, never freed. */
    private static final ByteBuf EMPTY_NATIVE = Unpooled.unreleasableBuffer(Unpooled.directBuffer(1, 1));

    /**
     * Rounds at most: each moves at least one BIO buffer's worth (2,048 bytes by default), so 64 cover 128 KiB of
     * post-handshake records, far above any certificate chain a ticket can hold.
     */
    private static final int MAX_ROUNDS = 64;

    /** A handler for one channel's pipeline, right after its {@link SslHandler}. */
    public SessionTicketFlusher() {
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
        if (evt instanceof SslHandshakeCompletionEvent done) {
            ctx.pipeline().remove(this);
            SslHandler ssl = ctx.pipeline().get(SslHandler.class);
            if (done.isSuccess() && ssl != null && ssl.engine() instanceof ReferenceCountedOpenSslEngine openssl
                    && "TLSv1.3".equals(openssl.getSession().getProtocol())) {
                flush(openssl, () -> ctx.writeAndFlush(Unpooled.EMPTY_BUFFER), ctx.channel()::isActive);
            }
        }
        ctx.fireUserEventTriggered(evt);
    }

    /**
     * Zero-byte writes, each followed by {@code wrapAndFlush} (which must make the {@link SslHandler} wrap the BIO's
     * records and write them to the socket), until BoringSSL has nothing queued or {@code open} turns false; the number
     * of rounds made. Event loop of the channel.
     */
    static int flush(ReferenceCountedOpenSslEngine openssl, Runnable wrapAndFlush,
                     java.util.function.BooleanSupplier open) {
        if (!EMPTY_NATIVE.hasMemoryAddress()) {
            return 0;
        }
        for (int round = 1; round <= MAX_ROUNDS; round++) {
            boolean more;
            synchronized (openssl) { // the engine's own lock, as its wrap and unwrap take it
                long pointer = openssl.sslPointer();
                if (pointer == 0) {
                    return round - 1; // freed: the channel closed
                }
                int rc = SSL.writeToSSL(pointer, EMPTY_NATIVE.memoryAddress(), 0); // BoringSSL's way to flush
                more = rc <= 0 && SSL.getError(pointer, rc) == SSL.SSL_ERROR_WANT_WRITE;
            }
            wrapAndFlush.run(); // SslHandler's wrap moves the BIO's records to the socket
            if (!more || !open.getAsBoolean()) {
                return round;
            }
        }
        return MAX_ROUNDS;
    }
}
