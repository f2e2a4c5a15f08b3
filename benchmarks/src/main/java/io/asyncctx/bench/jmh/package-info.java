/**
 * JMH microbenchmarks: the wait ctx and job operations, the resume cost of each notification path (per-ctx eventfd,
 * shared eventfd with batches, callback) against Netty's plain promise path, and the signature cost per key type and
 * provider, directly and through the software engine. Run with {@code java -jar benchmarks/target/benchmarks.jar}
 * (see {@code results/JMH.md}); the normal build compiles them and never runs them.
 *
 * <p>May depend on the library, Netty, JMH and HdrHistogram; nothing depends on this package.
 */
package io.asyncctx.bench.jmh;
