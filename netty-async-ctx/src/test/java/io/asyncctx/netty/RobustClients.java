package io.asyncctx.netty;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.util.concurrent.Future;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;

/**
 * TLS peers for the robustness tests: a Netty TLS client (BoringSSL, no session resumption, optionally keeping an
 * HTTP/1.1 connection alive), raw sockets that send canned ClientHellos, parts of them or garbage.
 *
 * <p>Threading: static helpers; the client's channels run on the group the caller gives and shuts down.
 */
final class RobustClients {

    private RobustClients() {
    }

    /** A client context that trusts anything and never resumes sessions (so every connection signs). */
    static SslContext clientContext(String... protocols) throws SSLException {
        return SslContextBuilder.forClient().sslProvider(SslProvider.OPENSSL)
                .trustManager(InsecureTrustManagerFactory.INSTANCE)
                .protocols(protocols.length == 0 ? new String[] {"TLSv1.3"} : protocols)
                .sessionCacheSize(1).sessionTimeout(1)
                .build();
    }

    /** A connected TLS client channel; {@code responses} receives its HTTP responses (bodies as text). */
    record Client(Channel channel, Future<Channel> handshake, BlockingQueue<String> responses) {

        /** Sends GET / with keep-alive. */
        void get() {
            DefaultFullHttpRequest req = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/");
            req.headers().set(HttpHeaderNames.HOST, "localhost");
            channel.writeAndFlush(req);
        }
    }

    /** Connects a TLS client with an HTTP codec; the handshake starts at once. */
    static Client connect(EventLoopGroup group, SslContext ctx, int port) throws InterruptedException {
        BlockingQueue<String> responses = new LinkedBlockingQueue<>();
        SslHandler[] ssl = new SslHandler[1];
        ChannelFuture cf = new Bootstrap().group(group).channel(NioSocketChannel.class)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 10_000)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        // A fresh peer host per connection keeps BoringSSL's client cache out of the way.
                        ssl[0] = ctx.newHandler(ch.alloc(), "localhost", port);
                        ch.pipeline().addLast(ssl[0], new HttpClientCodec(), new HttpObjectAggregator(8192),
                                new SimpleChannelInboundHandler<FullHttpResponse>() {
                                    @Override
                                    protected void channelRead0(ChannelHandlerContext c, FullHttpResponse res) {
                                        responses.add(res.status().code() + " "
                                                + res.content().toString(StandardCharsets.UTF_8));
                                    }

                                    @Override
                                    public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
                                        c.close();
                                    }
                                });
                    }
                })
                .connect("127.0.0.1", port);
        cf.await(15, TimeUnit.SECONDS);
        if (!cf.isSuccess()) {
            throw new AssertionError("connect failed", cf.cause());
        }
        return new Client(cf.channel(), ssl[0].handshakeFuture(), responses);
    }

    /** The bytes of a real TLS 1.3 ClientHello (one record) from the JDK's client engine. */
    static byte[] clientHello() throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLSv1.3");
        ctx.init(null, InsecureTrustManagerFactory.INSTANCE.getTrustManagers(), null);
        SSLEngine engine = ctx.createSSLEngine("localhost", 443);
        engine.setUseClientMode(true);
        ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
        engine.wrap(ByteBuffer.allocate(0), out);
        out.flip();
        byte[] hello = new byte[out.remaining()];
        out.get(hello);
        if (hello.length < 50 || hello[0] != 0x16) {
            throw new AssertionError("not a handshake record: " + Arrays.toString(Arrays.copyOf(hello, 8)));
        }
        return hello;
    }

    /** Opens a plain socket to the server. */
    static Socket socket(int port) throws IOException {
        Socket s = new Socket();
        s.setSoTimeout(10_000);
        s.setTcpNoDelay(true);
        s.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
        return s;
    }

    /** Sends {@code bytes} and reads until the server closes; true when it closed within the socket timeout. */
    static boolean sendAndAwaitClose(int port, byte[] bytes) throws IOException {
        try (Socket s = socket(port)) {
            OutputStream out = s.getOutputStream();
            out.write(bytes);
            out.flush();
            return awaitClose(s);
        }
    }

    /** Reads from {@code s} until the server closes it; true when it closed within the socket timeout. */
    static boolean awaitClose(Socket s) throws IOException {
        InputStream in = s.getInputStream();
        byte[] buf = new byte[4096];
        try {
            while (in.read(buf) >= 0) {
                // drain the server's alert or handshake data until it closes
            }
            return true;
        } catch (java.net.SocketTimeoutException e) {
            return false;
        } catch (IOException e) {
            return true; // reset by the server: closed too
        }
    }
}
