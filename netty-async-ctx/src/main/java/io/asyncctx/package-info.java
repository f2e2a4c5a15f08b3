/**
 * The core: {@link io.asyncctx.AsyncWaitCtx}, the Java counterpart of OpenSSL's {@code ASYNC_WAIT_CTX}, and
 * {@link io.asyncctx.AsyncJob} with its {@link io.asyncctx.AsyncJobPool}, the counterparts of {@code ASYNC_JOB} and
 * the per-thread job pool.
 *
 * <p>Depends on the JDK only. The engine SPI ({@code io.asyncctx.engine}) and the Netty integration
 * ({@code io.asyncctx.netty}) build on it; nothing here knows about them.
 */
package io.asyncctx;
