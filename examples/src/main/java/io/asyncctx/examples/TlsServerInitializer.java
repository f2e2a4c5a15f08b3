package io.asyncctx.examples;

import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.SessionTicketFlusher;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ApplicationProtocolNegotiationHandler;
import io.netty.handler.ssl.SniHandler;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.handler.timeout.IdleStateHandler;

import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Sets up each accepted channel: TLS (offloaded, inline or blocking, as the server's mode says), the TLS 1.3 session
 * tickets sent right after the handshake (the offload mode's handler does it itself; {@link SessionTicketFlusher} does
 * it for the stock handlers of the inline and blocking modes), then, once ALPN has
 * chosen, HTTP/2 (Netty's HTTP/2 codec, one child channel per stream) or HTTP/1.1. Both end in the same
 * {@link HttpInfoHandler}. Another protocol is one more case in {@link #configure}. Behind the TLS handler sits the
 * connection's {@link ConnectionGuard}: failed handshakes in one line, the idle timeout, the graceful drain.
 *
 * <p>Threading: shared by all channels; {@link #initChannel} runs on each channel's event loop.
 */
final class TlsServerInitializer extends ChannelInitializer<SocketChannel> {

    static final int MAX_REQUEST_BYTES = 16 * 1024;

    private final Function<SocketChannel, ChannelHandler> tls;
    private final boolean http2;
    private final Supplier<String> metrics;
    private final Connections connections;

    private final ChannelHandler altSvc;

    /** With {@code altSvc}: the Alt-Svc header value for HTTP responses, or null for none (see --http3). */
    TlsServerInitializer(Function<SocketChannel, ChannelHandler> tls, boolean http2, Supplier<String> metrics,
                         Supplier<String> altSvc, Connections connections) {
        this.tls = tls;
        this.http2 = http2;
        this.metrics = metrics;
        this.altSvc = new AltSvcHandler(altSvc);
        this.connections = connections;
    }

    @Override
    protected void initChannel(SocketChannel ch) {
        ChannelHandler handler = tls.apply(ch);
        if (handler instanceof SslHandler ssl) {
            // before it joins the pipeline: SslHandler schedules its timeout when added to an active channel
            ssl.setHandshakeTimeoutMillis(connections.policy().handshakeTimeout().toMillis());
        }
        ch.pipeline().addLast(handler);
        // --site: Netty's SniHandler (its handshake timeout given when made) replaces itself with an offload context's
        // handler, which sends its tickets itself
        if (!(handler instanceof SniHandler) && !(handler instanceof SslHandler ssl
                && AsyncSslContext.flushesTickets(ssl))) {
            ch.pipeline().addLast(new SessionTicketFlusher()); // the stock handlers of the inline and blocking modes
        }
        ConnectionGuard guard = connections.register(ch);
        ch.pipeline().addLast(guard);
        if (http2) {
            ch.pipeline().addLast(new ApplicationProtocolNegotiationHandler(ApplicationProtocolNames.HTTP_1_1) {
                @Override
                protected void configurePipeline(ChannelHandlerContext ctx, String protocol) {
                    configure(ctx.pipeline(), protocol, guard);
                }

                @Override
                protected void handshakeFailure(ChannelHandlerContext ctx, Throwable cause) {
                    ctx.close(); // ConnectionGuard has counted and logged it (it stops the event; this is a guard)
                }

                @Override
                public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                    // A peer that resets or sends garbage before ALPN settled: routine under load and from scanners,
                    // counted by ConnectionGuard when it fails the handshake; Netty's handler and the pipeline's tail
                    // would log two stack traces per connection.
                    ctx.close();
                }
            });
        } else {
            ch.pipeline().addLast(new ChannelInboundHandlerAdapter() {
                @Override
                public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
                    if (evt instanceof SslHandshakeCompletionEvent done && done.isSuccess()) {
                        ctx.pipeline().remove(this);
                        configure(ctx.pipeline(), ApplicationProtocolNames.HTTP_1_1, guard);
                    }
                    ctx.fireUserEventTriggered(evt);
                }
            });
        }
    }

    /** Adds the handlers of the negotiated application protocol, and the idle timeout of the established connection. */
    void configure(ChannelPipeline pipeline, String protocol, ConnectionGuard guard) {
        ServerPolicy policy = connections.policy();
        long grace = policy.shutdownGrace().isZero() ? -1 : policy.shutdownGrace().toMillis();
        ConnectionGuard.Phase phase;
        switch (protocol) {
            case ApplicationProtocolNames.HTTP_2 -> {
                pipeline.addLast(Http2FrameCodecBuilder.forServer().gracefulShutdownTimeoutMillis(grace).build(),
                        new Http2MultiplexHandler(new ChannelInitializer<Http2StreamChannel>() {
                            @Override
                            protected void initChannel(Http2StreamChannel stream) {
                                stream.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(true),
                                        new HttpObjectAggregator(MAX_REQUEST_BYTES), altSvc,
                                        new HttpInfoHandler(metrics));
                            }
                        }));
                phase = ConnectionGuard.Phase.HTTP2;
            }
            case ApplicationProtocolNames.HTTP_1_1 -> {
                pipeline.addLast(new HttpServerCodec(), new HttpObjectAggregator(MAX_REQUEST_BYTES), altSvc,
                        new HttpInfoHandler(metrics));
                phase = ConnectionGuard.Phase.HTTP1;
            }
            default -> throw new IllegalStateException("ALPN chose an unknown protocol: " + protocol);
        }
        // First in the pipeline: it sees the socket's bytes both ways; its events reach the guard.
        pipeline.addFirst("idle", new IdleStateHandler(0, 0, policy.idleTimeout().toMillis(), TimeUnit.MILLISECONDS));
        guard.established(phase);
    }
}
