package io.asyncctx.examples;

import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.AsyncSslContextBuilder;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;

import java.io.File;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A TLS server whose handshake signatures run on an engine's threads, never on the event loop. Run it with
 * {@code --cert chain.pem --key key.pem [--port 8443]}; it serves {@code GET /} on 127.0.0.1 until killed.
 *
 * <p>Threading: {@link #main} runs on the main thread and blocks until the server channel closes.
 */
public final class MinimalOffloadServer {

    private MinimalOffloadServer() {
    }

    /** Parses {@code --cert FILE --key FILE [--port N]}, serves HTTPS, prints a line when ready. */
    public static void main(String[] args) throws Exception {
        String cert = null;
        String key = null;
        int port = 8443;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--cert" -> cert = args[i + 1];
                case "--key" -> key = args[i + 1];
                case "--port" -> port = Integer.parseInt(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown flag " + args[i]);
            }
        }
        if (cert == null || key == null || args.length % 2 != 0) {
            System.err.println("usage: MinimalOffloadServer --cert chain.pem --key key.pem [--port 8443]");
            System.exit(2);
        }
        // The engine holds the key and signs on its worker threads; the context hands it every key operation.
        SoftwareEngine engine = SoftwareEngine.builder().pem(Path.of(key), Path.of(cert)).build();
        AsyncSslContext tls = AsyncSslContextBuilder.forServer(engine, new File(cert)).build();
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(EpollIoHandler.newFactory());
        int status = 0;
        try {
            ChannelFuture bind = new ServerBootstrap().group(group).channel(EpollServerSocketChannel.class)
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            ch.pipeline().addLast(tls.newHandler(ch.alloc())); // TLS, key operations offloaded
                            ch.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(8192), new Hello());
                        }
                    }).bind("127.0.0.1", port).await();
            if (bind.isSuccess()) {
                InetSocketAddress at = (InetSocketAddress) bind.channel().localAddress();
                System.out.println("listening on " + at.getHostString() + ":" + at.getPort());
                bind.channel().closeFuture().sync();
            } else { // one line, no stack trace: the usual cause is another server on the port
                System.err.println("cannot listen on 127.0.0.1:" + port + " (" + bind.cause().getMessage()
                        + "); is another server there? choose another --port");
                status = 2;
            }
        } finally {
            group.shutdownGracefully();
            engine.close();
        }
        System.exit(status);
    }

    /** Answers every request with 200 and a line of text. One per connection, on its event loop. */
    static final class Hello extends SimpleChannelInboundHandler<FullHttpRequest> {
        @Override
        protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
            FullHttpResponse res = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK,
                    Unpooled.copiedBuffer("hello over TLS, key offloaded\n", StandardCharsets.UTF_8));
            HttpUtil.setContentLength(res, res.content().readableBytes());
            ctx.writeAndFlush(res);
        }
    }
}
