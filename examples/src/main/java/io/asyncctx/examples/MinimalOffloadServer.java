package io.asyncctx.examples;

import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.AsyncSslContextBuilder;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;

import java.io.File;
import java.nio.file.Path;

/**
 * The README's ten-line server, compiled so that it cannot rot: {@code java -cp
 * examples/target/netty-async-ctx-examples.jar io.asyncctx.examples.MinimalOffloadServer key.pem chain.pem 8443}.
 *
 * <p>Threading: {@link #main} runs on the main thread and blocks until the server channel closes.
 */
public final class MinimalOffloadServer {

    private MinimalOffloadServer() {
    }

    /** Serves HTTPS on 127.0.0.1:{@code args[2]} with the key {@code args[0]} and chain {@code args[1]}. */
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: MinimalOffloadServer key.pem chain.pem port");
            System.exit(2);
        }
        // --- the README's server ---
        SoftwareEngine engine = SoftwareEngine.builder().pem(Path.of(args[0]), Path.of(args[1])).build();
        AsyncSslContext tls = AsyncSslContextBuilder.forServer(engine, new File(args[1])).build();
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(EpollIoHandler.newFactory());
        new ServerBootstrap().group(group).channel(EpollServerSocketChannel.class)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(tls.newHandler(ch));          // TLS, with key operations offloaded
                        ch.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(8192),
                                new HttpInfoHandler(() -> ""));
                    }
                }).bind("127.0.0.1", Integer.parseInt(args[2])).sync().channel().closeFuture().sync();
    }
}
