package io.asyncctx.examples;

import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
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

import java.io.IOException;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Sets up each accepted channel: TLS (offloaded, inline or blocking, as the server's mode says), the TLS 1.3 session
 * tickets sent right after the handshake ({@link SessionTicketFlusher}), then, once ALPN has
 * chosen, HTTP/2 (Netty's HTTP/2 codec, one child channel per stream) or HTTP/1.1. Both end in the same
 * {@link HttpInfoHandler}. Another protocol is one more case in {@link #configure}. A peer that resets before ALPN
 * has settled is closed without a log line (a reset is routine under load; Netty's handler would log it twice).
 *
 * <p>Threading: shared by all channels; {@link #initChannel} runs on each channel's event loop.
 */
final class TlsServerInitializer extends ChannelInitializer<SocketChannel> {

    static final int MAX_REQUEST_BYTES = 16 * 1024;

    private final Function<SocketChannel, ChannelHandler> tls;
    private final boolean http2;
    private final Supplier<String> metrics;

    private final ChannelHandler altSvc;

    TlsServerInitializer(Function<SocketChannel, ChannelHandler> tls, boolean http2, Supplier<String> metrics) {
        this(tls, http2, metrics, () -> null);
    }

    /** With {@code altSvc}: the Alt-Svc header value for HTTP responses, or null for none (see --http3). */
    TlsServerInitializer(Function<SocketChannel, ChannelHandler> tls, boolean http2, Supplier<String> metrics,
                         Supplier<String> altSvc) {
        this.tls = tls;
        this.http2 = http2;
        this.metrics = metrics;
        this.altSvc = new AltSvcHandler(altSvc);
    }

    @Override
    protected void initChannel(SocketChannel ch) {
        ch.pipeline().addLast(tls.apply(ch));
        ch.pipeline().addLast(new SessionTicketFlusher());
        if (http2) {
            ch.pipeline().addLast(new ApplicationProtocolNegotiationHandler(ApplicationProtocolNames.HTTP_1_1) {
                @Override
                protected void configurePipeline(ChannelHandlerContext ctx, String protocol) {
                    configure(ctx.pipeline(), protocol);
                }

                @Override
                public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) throws Exception {
                    if (cause instanceof IOException) {
                        // The peer reset or vanished before ALPN settled: routine under load (a storm client's
                        // close), not worth two stack traces per connection (Netty's handler and the pipeline's
                        // tail would both log it). Close; the TLS handler has already failed the handshake.
                        ctx.close();
                        return;
                    }
                    super.exceptionCaught(ctx, cause);
                }
            });
        } else {
            configure(ch.pipeline(), ApplicationProtocolNames.HTTP_1_1);
        }
    }

    /** Adds the handlers of the negotiated application protocol. */
    void configure(ChannelPipeline pipeline, String protocol) {
        switch (protocol) {
            case ApplicationProtocolNames.HTTP_2 -> pipeline.addLast(Http2FrameCodecBuilder.forServer().build(),
                    new Http2MultiplexHandler(new ChannelInitializer<Http2StreamChannel>() {
                        @Override
                        protected void initChannel(Http2StreamChannel stream) {
                            stream.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(true),
                                    new HttpObjectAggregator(MAX_REQUEST_BYTES), altSvc, new HttpInfoHandler(metrics));
                        }
                    }));
            case ApplicationProtocolNames.HTTP_1_1 -> pipeline.addLast(new HttpServerCodec(),
                    new HttpObjectAggregator(MAX_REQUEST_BYTES), altSvc, new HttpInfoHandler(metrics));
            default -> throw new IllegalStateException("ALPN chose an unknown protocol: " + protocol);
        }
    }
}
