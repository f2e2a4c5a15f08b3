package io.asyncctx.netty;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.ssl.SslHandler;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLSession;

/**
 * A real TLS server for integration tests: the chosen transport, an {@link AsyncSslContext}, and an HTTP/1.1 handler
 * that answers {@code GET /} with the negotiated protocol and cipher. Started on 127.0.0.1 on a free port.
 *
 * <p>Threading: start and close from the test thread.
 */
final class TlsTestServer implements AutoCloseable {

    enum Transport {
        EPOLL, IO_URING, NIO;

        IoHandlerFactory factory() {
            return switch (this) {
                case EPOLL -> EpollIoHandler.newFactory();
                case IO_URING -> IoUringIoHandler.newFactory();
                case NIO -> NioIoHandler.newFactory();
            };
        }

        Class<? extends ServerChannel> serverChannel() {
            return switch (this) {
                case EPOLL -> EpollServerSocketChannel.class;
                case IO_URING -> IoUringServerSocketChannel.class;
                case NIO -> NioServerSocketChannel.class;
            };
        }
    }

    final EventLoopGroup group;
    final Channel serverChannel;
    final AtomicInteger handshakes = new AtomicInteger();
    final AtomicInteger handshakeFailures = new AtomicInteger();
    volatile Throwable lastHandshakeFailure;

    TlsTestServer(Transport transport, int threads, AsyncSslContext context) throws InterruptedException {
        group = new MultiThreadIoEventLoopGroup(threads, transport.factory());
        boolean success = false;
        try {
            serverChannel = new ServerBootstrap()
                    .group(group)
                    .channel(transport.serverChannel())
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            // The one-line path that frameworks take: the context's own SslHandler binds itself.
                            SslHandler ssl = context.newHandler(ch.alloc());
                            // Generous: tests run many handshakes at once on a loaded 2-core machine.
                            ssl.setHandshakeTimeoutMillis(120_000);
                            ch.pipeline().addLast(ssl);
                            ssl.handshakeFuture().addListener(f -> {
                                if (f.isSuccess()) {
                                    handshakes.incrementAndGet();
                                } else {
                                    handshakeFailures.incrementAndGet();
                                    lastHandshakeFailure = f.cause();
                                }
                            });
                            ch.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(8192),
                                    new InfoHandler());
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

    /** Answers every request with "protocol cipher". */
    static final class InfoHandler extends SimpleChannelInboundHandler<FullHttpRequest> {
        @Override
        protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
            SSLSession session = ctx.pipeline().get(SslHandler.class).engine().getSession();
            ByteBuf body = Unpooled.copiedBuffer(session.getProtocol() + " " + session.getCipherSuite() + "\n",
                    StandardCharsets.UTF_8);
            FullHttpResponse res = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK, body);
            res.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/plain");
            HttpUtil.setContentLength(res, body.readableBytes());
            boolean keepAlive = HttpUtil.isKeepAlive(req);
            HttpUtil.setKeepAlive(res, keepAlive);
            if (keepAlive) {
                ctx.writeAndFlush(res);
            } else {
                ctx.writeAndFlush(res).addListener(ChannelFutureListener.CLOSE);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }
}
