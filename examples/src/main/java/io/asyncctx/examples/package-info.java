/**
 * Runnable examples: the example TLS server (offload, inline or blocking handshakes) and the demo that compares them.
 * Depends on the library and on Netty's HTTP codec, picocli and HdrHistogram; nothing depends on it.
 */
package io.asyncctx.examples;
