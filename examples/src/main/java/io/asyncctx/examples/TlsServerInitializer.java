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

    TlsServerInitializer(Function<SocketChannel, ChannelHandler> tls, Supplier<String> metrics) {
        this.tls = tls;
        this.metrics = metrics;
    }

    @Override
    protected void initChannel(SocketChannel ch) {
        ch.pipeline().addLast(tls.apply(ch));
        ch.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(16 * 1024), new HttpInfoHandler(metrics));
    }
}
