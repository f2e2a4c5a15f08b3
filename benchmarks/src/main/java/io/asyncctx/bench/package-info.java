/**
 * Benchmarks: JMH microbenchmarks ({@code io.asyncctx.bench.jmh}) and the TLS load harness
 * ({@code io.asyncctx.bench.load}). Depends on everything; nothing depends on it.
 */
package io.asyncctx.bench;
