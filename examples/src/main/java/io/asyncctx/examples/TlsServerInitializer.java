package io.asyncctx.examples;

import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;

import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Sets up each accepted channel: TLS (offloaded, inline or blocking, as the server's mode says), then HTTP/1.1.
 *
 * <p>Threading: shared by all channels; {@link #initChannel} runs on each channel's event loop.
 */
final class TlsServerInitializer extends ChannelInitializer<SocketChannel> {

    private final Function<SocketChannel, ChannelHandler> tls;
    private final Supplier<String> metrics;

    private final ChannelHandler altSvc;

    TlsServerInitializer(Function<SocketChannel, ChannelHandler> tls, Supplier<String> metrics) {
        this(tls, metrics, () -> null);
    }

    /** With {@code altSvc}: the Alt-Svc header value for HTTP/1.1 responses, or null for none (see --http3). */
    TlsServerInitializer(Function<SocketChannel, ChannelHandler> tls, Supplier<String> metrics,
                         Supplier<String> altSvc) {
        this.tls = tls;
        this.metrics = metrics;
        this.altSvc = new AltSvcHandler(altSvc);
    }

    @Override
    protected void initChannel(SocketChannel ch) {
        ch.pipeline().addLast(tls.apply(ch));
        ch.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(16 * 1024), altSvc,
                new HttpInfoHandler(metrics));
    }
}
