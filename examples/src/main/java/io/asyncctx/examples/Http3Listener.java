package io.asyncctx.examples;

import io.asyncctx.quic.QuicAsyncSslContext;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollDatagramChannel;
import io.netty.channel.socket.DatagramChannel;
import io.netty.channel.socket.nio.NioDatagramChannel;
import io.netty.channel.uring.IoUringDatagramChannel;
import io.netty.handler.codec.http3.Http3;
import io.netty.handler.codec.http3.Http3ServerConnectionHandler;
import io.netty.handler.codec.quic.InsecureQuicTokenHandler;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicStreamChannel;

import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The example server's HTTP/3 listener ({@code --http3}): QUIC over UDP on the same port number as the TCP listener,
 * on the same event loops (so the same transport), its handshakes' key operations offloaded through a
 * {@link QuicAsyncSslContext}. {@code GET /} answers the protocol, the cipher and whether this connection's key
 * operation was offloaded; {@code GET /metrics} the server's metrics.
 *
 * <p>Threading: bind and close from one thread (not an event loop); the handlers run on the UDP channel's loop.
 */
final class Http3Listener implements AutoCloseable {

    private final Channel channel;

    private Http3Listener(Channel channel) {
        this.channel = channel;
    }

    static Class<? extends DatagramChannel> datagramChannel(ExampleServer.Transport transport) {
        return switch (transport) {
            case EPOLL -> EpollDatagramChannel.class;
            case IO_URING -> IoUringDatagramChannel.class;
            case NIO -> NioDatagramChannel.class;
        };
    }

    /** Binds UDP {@code host:port} on {@code group}. */
    static Http3Listener bind(EventLoopGroup group, ExampleServer.Transport transport, String host, int port,
                              QuicAsyncSslContext ctx, Supplier<String> metrics) throws InterruptedException {
        ChannelHandler codec = ctx.configure(Http3.newQuicServerCodecBuilder())
                .maxIdleTimeout(30, TimeUnit.SECONDS)
                .initialMaxData(10_000_000).initialMaxStreamDataBidirectionalLocal(1_000_000)
                .initialMaxStreamDataBidirectionalRemote(1_000_000).initialMaxStreamsBidirectional(100)
                .initialMaxStreamsUnidirectional(100).initialMaxStreamDataUnidirectional(1_000_000)
                .tokenHandler(InsecureQuicTokenHandler.INSTANCE)
                .handler(new ChannelInitializer<QuicChannel>() {
                    @Override
                    protected void initChannel(QuicChannel ch) {
                        ch.pipeline().addLast(new Http3ServerConnectionHandler(
                                new ChannelInitializer<QuicStreamChannel>() {
                                    @Override
                                    protected void initChannel(QuicStreamChannel stream) {
                                        stream.pipeline().addLast(new Http3InfoHandler(ctx, metrics));
                                    }
                                }));
                    }
                }).build();
        Channel ch = new Bootstrap().group(group).channel(datagramChannel(transport))
                .option(ChannelOption.SO_RCVBUF, 4 << 20).handler(codec)
                .bind(new InetSocketAddress(host, port)).sync().channel();
        return new Http3Listener(ch);
    }

    /** The bound UDP port. */
    int port() {
        return ((InetSocketAddress) channel.localAddress()).getPort();
    }

    @Override
    public void close() throws InterruptedException {
        channel.close().await(5, TimeUnit.SECONDS);
    }
}
