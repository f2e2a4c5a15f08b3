/**
 * The PKCS#11 engine: private-key operations on a key that never leaves a hardware (or SoftHSM) token, through the
 * JDK's SunPKCS11 provider, run on the engine's own worker threads and signalled through the connection's
 * {@link io.asyncctx.AsyncWaitCtx}.
 *
 * <p>Depends on the engine SPI ({@code io.asyncctx.engine}), the core and the JDK ({@code jdk.crypto.cryptoki}, and
 * {@code jdk.unsupported} to read the token label that SunPKCS11 does not publish). Never on Netty's pipeline classes.
 * The SunPKCS11 provider of an engine is never installed with {@link java.security.Security#addProvider}.
 */
package io.asyncctx.engine.pkcs11;
