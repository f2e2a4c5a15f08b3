/**
 * The Netty integration: runs {@link io.asyncctx.AsyncJob}s on Netty's {@link io.netty.channel.IoEventLoop}s and
 * resumes them on the loop's thread, through a per-loop registry of wait fds (epoll and io_uring loops) or through the
 * ctx's callback (any loop, NIO included). {@link io.asyncctx.netty.AsyncOffloadConnection} is one connection's
 * offload state; {@link io.asyncctx.netty.OffloadConfig} its settings; {@link io.asyncctx.netty.AsyncOffloadLoops}
 * per-loop counters. The TLS glue (SslContext builder, private key method, handler) lives here too.
 *
 * <p>Depends on the core ({@code io.asyncctx}), the engine SPI ({@code io.asyncctx.engine}) and Netty's transport
 * (epoll and io_uring classes for the fd path).
 */
package io.asyncctx.netty;
