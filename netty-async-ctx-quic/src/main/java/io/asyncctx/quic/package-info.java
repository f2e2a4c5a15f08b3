/**
 * QUIC (and so HTTP/3) handshakes whose private-key operations run as {@link io.asyncctx.AsyncJob}s on the same
 * engines, with the same {@link io.asyncctx.AsyncWaitCtx} per connection, the same wait fds on the QUIC channel's own
 * event loop and the same {@link io.asyncctx.netty.OffloadConfig} as TCP: {@link io.asyncctx.quic.QuicAsyncSslContextBuilder}
 * builds a {@link io.asyncctx.quic.QuicAsyncSslContext}, which configures a Netty QUIC codec builder.
 *
 * <p>Depends on {@code io.asyncctx}, {@code io.asyncctx.engine}, {@code io.asyncctx.netty} (its public API only) and
 * Netty's {@code io.netty.handler.codec.quic}; nothing in the library depends on this package.
 */
package io.asyncctx.quic;
