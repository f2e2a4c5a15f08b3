/**
 * A test kit for users' own tests of code that drives {@link io.asyncctx.AsyncJob}s and
 * {@link io.asyncctx.AsyncWaitCtx}s: {@link io.asyncctx.testkit.FaultInjectingEngine}, an engine that injects the
 * faults the man page allows (EAGAIN, status ERR at submit, failed operations, operations that never complete,
 * completion before the job has paused, duplicate and spurious wake-ups) deterministically under a seed, so that an
 * integration can prove it loses nothing and leaks nothing; {@link io.asyncctx.testkit.SimulatedAcceleratorEngine}, a
 * model of a QAT-like accelerator (fixed-capacity ring, fixed latency that costs no CPU, one polling thread) for tests
 * and benchmarks; and {@link io.asyncctx.testkit.BlockingKeyMethod}, the
 * naive baseline that calls an engine synchronously on the event loop, for comparisons; and
 * {@link io.asyncctx.testkit.FloodingPeer}, a peer that floods its handshake with junk records while the server's key
 * operation waits, to show from outside that the server's reads are held.
 *
 * <p>Not meant for production servers. Depends on the core ({@code io.asyncctx}), the engine SPI
 * ({@code io.asyncctx.engine}), the JDK, and (for {@code BlockingKeyMethod} only) Netty's
 * {@code OpenSslAsyncPrivateKeyMethod}; never on Netty's pipeline classes or on a test framework.
 */
package io.asyncctx.testkit;
