package io.asyncctx.frameworks;

import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
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
import io.netty.handler.ssl.SniHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.DomainWildcardMappingBuilder;
import io.netty.util.Mapping;

import java.nio.charset.StandardCharsets;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.concurrent.TimeUnit;

/**
 * A plain Netty HTTPS server with Netty's stock {@link SniHandler}: the name the client asks for picks one of several
 * offloading contexts (here {@code rsa.example.test} with an RSA-2048 key, {@code *.ec.example.test} with a P-256 key,
 * and a default for every other name), each with its own engine. {@code SniHandler} replaces itself with the chosen
 * context's {@code newHandler}, which binds its offload as usual. Run with
 * {@code java -jar netty-async-ctx-framework-examples.jar sni [port]}.
 *
 * <p>Threading: {@link #start} and {@link #close} from one thread; the server runs on its own event loops.
 */
public final class SniTlsServer implements AutoCloseable {

    /** The name served with the RSA context. */
    public static final String RSA_NAME = "rsa.example.test";
    /** The names served with the P-256 context (a wildcard). */
    public static final String EC_NAMES = "*.ec.example.test";

    private final EventLoopGroup group;
    private final Channel channel;

    private SniTlsServer(EventLoopGroup group, Channel channel) {
        this.group = group;
        this.channel = channel;
    }

    /**
     * Serves {@code GET /} on 127.0.0.1:{@code port} (0: any free port), answering with the subject of the certificate
     * it served. Handshakes (including the wait for the ClientHello) end after {@code handshakeTimeoutMillis}.
     */
    public static SniTlsServer start(SslContext rsa, SslContext ec, SslContext fallback, int port,
                                     long handshakeTimeoutMillis) throws InterruptedException {
        // readme:sni
        Mapping<String, SslContext> contexts = new DomainWildcardMappingBuilder<>(fallback)
                .add(RSA_NAME, rsa)
                .add(EC_NAMES, ec)
                .build();
        // end
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(EpollIoHandler.newFactory());
        boolean success = false;
        try {
            Channel channel = new ServerBootstrap().group(group).channel(EpollServerSocketChannel.class)
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            // readme:sni-pipeline
                            ch.pipeline().addLast(new SniHandler(contexts, handshakeTimeoutMillis));
                            // end
                            ch.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(8192),
                                    new WhoAmI());
                        }
                    }).bind("127.0.0.1", port).sync().channel();
            success = true;
            return new SniTlsServer(group, channel);
        } finally {
            if (!success) {
                group.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            }
        }
    }

    /** The port the server listens on. */
    public int port() {
        return ((java.net.InetSocketAddress) channel.localAddress()).getPort();
    }

    @Override
    public void close() throws InterruptedException {
        channel.close().sync();
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
    }

    /** Starts the server on {@code args[0]} (default 8443) with three fresh self-signed certificates. */
    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 8443;
        X509Bundle rsaCert = ExampleTls.selfSigned(RSA_NAME, CertificateBuilder.Algorithm.rsa2048);
        X509Bundle ecCert = ExampleTls.selfSigned("www.ec.example.test", CertificateBuilder.Algorithm.ecp256);
        X509Bundle fallbackCert = ExampleTls.selfSigned("localhost", CertificateBuilder.Algorithm.rsa2048);
        try (SoftwareEngine rsaEngine = ExampleTls.engine(rsaCert);
             SoftwareEngine ecEngine = ExampleTls.engine(ecCert);
             SoftwareEngine fallbackEngine = ExampleTls.engine(fallbackCert)) {
            AsyncSslContext rsa = ExampleTls.context(rsaEngine, rsaCert, "http/1.1");
            AsyncSslContext ec = ExampleTls.context(ecEngine, ecCert, "http/1.1");
            AsyncSslContext fallback = ExampleTls.context(fallbackEngine, fallbackCert, "http/1.1");
            try (SniTlsServer server = start(rsa, ec, fallback, port, 10_000)) {
                System.out.println("sni: listening on https://127.0.0.1:" + server.port() + "/ for " + RSA_NAME
                        + ", " + EC_NAMES + " and any other name");
                server.channel.closeFuture().sync();
            }
        }
    }

    /** Answers with the subject of the certificate this connection was served. One per connection. */
    static final class WhoAmI extends SimpleChannelInboundHandler<FullHttpRequest> {
        @Override
        protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
            Certificate[] served = ctx.pipeline().get(SslHandler.class).engine().getSession().getLocalCertificates();
            String subject = served == null ? "none" : ((X509Certificate) served[0]).getSubjectX500Principal().getName();
            FullHttpResponse res = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK,
                    Unpooled.copiedBuffer("served " + subject + "\n", StandardCharsets.UTF_8));
            HttpUtil.setContentLength(res, res.content().readableBytes());
            ctx.writeAndFlush(res).addListener(ChannelFutureListener.CLOSE);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }
}
