/**
 * One small TLS server per framework that builds its own {@code SslHandler}, each handed the library's
 * {@link io.asyncctx.netty.AsyncSslContext} in one line: {@link io.asyncctx.frameworks.ReactorTlsServer} (Reactor
 * Netty, HTTP/1.1 and h2), {@link io.asyncctx.frameworks.GrpcTlsServer} (gRPC-Java's non-shaded grpc-netty),
 * {@link io.asyncctx.frameworks.VertxTlsServer} (Vert.x 5) and {@link io.asyncctx.frameworks.SniTlsServer} (Netty's
 * stock {@code SniHandler} over several offloading contexts). {@link io.asyncctx.frameworks.Main} starts any of them.
 *
 * <p>Depends on the library, Netty and the frameworks; nothing depends on this package.
 */
package io.asyncctx.frameworks;
