package io.asyncctx.netty;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.ssl.SniCompletionEvent;
import io.netty.handler.ssl.SniHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;

import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A TLS server whose pipeline starts with Netty's own {@link SniHandler} over an {@link AsyncSniMapping}: the way a user
 * serves many sites on one port. Answers {@code GET /} as {@link TlsTestServer} does.
 *
 * <p>Threading: start and close from the test thread; the counters are read from any thread.
 */
final class SniTestServer implements AutoCloseable {

    final EventLoopGroup group;
    final Channel serverChannel;
    final AtomicInteger handshakes = new AtomicInteger();
    final AtomicInteger handshakeFailures = new AtomicInteger();
    volatile Throwable lastHandshakeFailure;

    SniTestServer(TlsTestServer.Transport transport, int threads, AsyncSniMapping mapping)
            throws InterruptedException {
        group = new MultiThreadIoEventLoopGroup(threads, transport.factory());
        boolean success = false;
        try {
            serverChannel = new ServerBootstrap().group(group).channel(transport.serverChannel())
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            ch.pipeline().addLast(new SniHandler(mapping, 120_000L));
                            ch.pipeline().addLast(new ChannelInboundHandlerAdapter() {
                                @Override
                                public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
                                    if (evt instanceof SslHandshakeCompletionEvent e) {
                                        if (e.isSuccess()) {
                                            handshakes.incrementAndGet();
                                        } else {
                                            handshakeFailures.incrementAndGet();
                                            lastHandshakeFailure = e.cause();
                                        }
                                    } else if (evt instanceof SniCompletionEvent e && !e.isSuccess()) {
                                        handshakeFailures.incrementAndGet();
                                        lastHandshakeFailure = e.cause();
                                    }
                                    ctx.fireUserEventTriggered(evt);
                                }
                            });
                            ch.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(8192),
                                    new TlsTestServer.InfoHandler());
                        }
                    })
                    .bind("127.0.0.1", 0).sync().channel();
            success = true;
        } finally {
            if (!success) {
                group.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            }
        }
    }

    int port() {
        return ((InetSocketAddress) serverChannel.localAddress()).getPort();
    }

    @Override
    public void close() throws InterruptedException {
        serverChannel.close().sync();
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
    }
}
