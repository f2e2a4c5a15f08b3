/**
 * The engine SPI and the engines: an {@link io.asyncctx.engine.AsyncEngine} (shared, thread-safe) opens an
 * {@link io.asyncctx.engine.EngineSession} per connection (bound to its event loop) and signals completions through
 * the connection's {@link io.asyncctx.AsyncWaitCtx} as OpenSSL's man page describes: a wait fd
 * ({@link io.asyncctx.engine.EventFd}) or the callback with status OK; EAGAIN when it cannot take the operation now;
 * ERR on a fatal fault.
 *
 * <p>Depends on the core ({@code io.asyncctx}), the JDK, and, for eventfds only, {@code io.netty.channel.epoll.Native}
 * inside {@link io.asyncctx.engine.EventFd}. Never on Netty's pipeline classes.
 */
package io.asyncctx.engine;
