package io.asyncctx.quic;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollDatagramChannel;
import io.netty.channel.socket.DatagramChannel;
import io.netty.channel.socket.nio.NioDatagramChannel;
import io.netty.channel.uring.IoUringDatagramChannel;
import io.netty.handler.codec.http3.DefaultHttp3DataFrame;
import io.netty.handler.codec.http3.DefaultHttp3HeadersFrame;
import io.netty.handler.codec.http3.Http3;
import io.netty.handler.codec.http3.Http3ClientConnectionHandler;
import io.netty.handler.codec.http3.Http3DataFrame;
import io.netty.handler.codec.http3.Http3HeadersFrame;
import io.netty.handler.codec.http3.Http3RequestStreamInboundHandler;
import io.netty.handler.codec.http3.Http3ServerConnectionHandler;
import io.netty.handler.codec.quic.BoringSSLContextOption;
import io.netty.handler.codec.quic.InsecureQuicTokenHandler;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicSslContext;
import io.netty.handler.codec.quic.QuicSslContextBuilder;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import java.util.concurrent.TimeUnit;

/**
 * Real HTTP/3 peers for the tests: a server whose QUIC handshakes go through a {@link QuicAsyncSslContext}, answering
 * {@code GET /} with {@code HTTP/3 cipher=... offloaded=N}, and Netty's HTTP/3 client.
 *
 * <p>Threading: static helpers; called on the test thread.
 */
final class Http3Peers {

    /** Netty's datagram channel classes by transport name (epoll, io_uring, nio). */
    static Class<? extends DatagramChannel> datagramClass(String transport) {
        return switch (transport) {
            case "EPOLL" -> EpollDatagramChannel.class;
            case "IO_URING" -> IoUringDatagramChannel.class;
            case "NIO" -> NioDatagramChannel.class;
            default -> throw new IllegalArgumentException(transport);
        };
    }

    private Http3Peers() {
    }

    /** Binds an HTTP/3 server on 127.0.0.1, port 0. */
    static Channel server(EventLoopGroup group, Class<? extends DatagramChannel> type, QuicAsyncSslContext ctx,
                          long idleMillis) throws InterruptedException {
        ChannelHandler codec = ctx.configure(Http3.newQuicServerCodecBuilder())
                .maxIdleTimeout(idleMillis, TimeUnit.MILLISECONDS)
                .initialMaxData(1 << 20).initialMaxStreamDataBidirectionalLocal(1 << 16)
                .initialMaxStreamDataBidirectionalRemote(1 << 16).initialMaxStreamsBidirectional(16)
                .tokenHandler(InsecureQuicTokenHandler.INSTANCE)
                .handler(new ChannelInitializer<QuicChannel>() {
                    @Override
                    protected void initChannel(QuicChannel ch) {
                        ch.pipeline().addLast(new Http3ServerConnectionHandler(
                                new ChannelInitializer<QuicStreamChannel>() {
                                    @Override
                                    protected void initChannel(QuicStreamChannel stream) {
                                        stream.pipeline().addLast(new InfoHandler(ctx));
                                    }
                                }));
                    }
                }).build();
        // Room for bursts of Initial packets (the kernel caps it at net.core.rmem_max).
        return new Bootstrap().group(group).channel(type).handler(codec).option(ChannelOption.SO_RCVBUF, 4 << 20)
                .bind(new InetSocketAddress("127.0.0.1", 0)).sync().channel();
    }

    /**
     * Answers every request with the protocol, the cipher, the context's offloaded and inline operations, and this
     * connection's inline operations.
     */
    static final class InfoHandler extends Http3RequestStreamInboundHandler {
        private final QuicAsyncSslContext ctx;

        InfoHandler(QuicAsyncSslContext ctx) {
            this.ctx = ctx;
        }

        @Override
        protected void channelRead(ChannelHandlerContext c, Http3HeadersFrame frame) {
            ReferenceCountUtil.release(frame);
        }

        @Override
        protected void channelRead(ChannelHandlerContext c, Http3DataFrame frame) {
            ReferenceCountUtil.release(frame);
        }

        @Override
        protected void channelInputClosed(ChannelHandlerContext c) {
            QuicChannel quic = (QuicChannel) c.channel().parent();
            String body = "HTTP/3 cipher=" + quic.sslEngine().getSession().getCipherSuite() + " offloaded="
                    + ctx.offloadedOperations() + " inline=" + ctx.inlineOperations() + " inlineHere="
                    + ctx.inlineOperations(quic) + "\n";
            byte[] bytes = body.getBytes(StandardCharsets.US_ASCII);
            Http3HeadersFrame headers = new DefaultHttp3HeadersFrame();
            headers.headers().status("200").add("content-type", "text/plain").addInt("content-length", bytes.length);
            c.write(headers);
            c.writeAndFlush(new DefaultHttp3DataFrame(Unpooled.wrappedBuffer(bytes)))
                    .addListener(QuicStreamChannel.SHUTDOWN_OUTPUT);
        }
    }

    /** A client QUIC context trusting {@code trusted}, accepting RSA, ECDSA and Ed25519 signatures. */
    static QuicSslContext clientContext(X509Certificate trusted) {
        return QuicSslContextBuilder.forClient().trustManager(trusted)
                .applicationProtocols(Http3.supportedApplicationProtocols())
                .option(BoringSSLContextOption.SIGNATURE_ALGORITHMS, new String[] {"ed25519", "ECDSA+SHA256",
                    "RSA-PSS+SHA256", "RSA+SHA256"})
                .build();
    }

    /** A client UDP channel with Netty's QUIC client codec, checking that the server's certificate is localhost's. */
    static Channel clientChannel(EventLoopGroup group, Class<? extends DatagramChannel> type, QuicSslContext ctx,
                                 int serverPort) throws InterruptedException {
        ChannelHandler codec = Http3.newQuicClientCodecBuilder()
                .sslEngineProvider(q -> ctx.newEngine(q.alloc(), "localhost", serverPort))
                .maxIdleTimeout(30_000, TimeUnit.MILLISECONDS).initialMaxData(1 << 20)
                .initialMaxStreamDataBidirectionalLocal(1 << 16).build();
        return new Bootstrap().group(group).channel(type).handler(codec).option(ChannelOption.SO_RCVBUF, 4 << 20)
                .bind(new InetSocketAddress("127.0.0.1", 0)).sync().channel();
    }

    /**
     * One full handshake and {@code GET /} with a fresh client context (the same one would resume its session and
     * skip the signature) on a new NIO client channel; closes both and returns the body.
     */
    static String fetchWithNewClient(EventLoopGroup clientGroup, X509Certificate trusted, InetSocketAddress server)
            throws Exception {
        Channel client = clientChannel(clientGroup, NioDatagramChannel.class, clientContext(trusted), server.getPort());
        try {
            QuicChannel quic = connect(client, server).get(30, TimeUnit.SECONDS);
            String body = get(quic, "localhost:" + server.getPort()).get(30, TimeUnit.SECONDS);
            quic.close().sync();
            return body;
        } finally {
            client.close().sync();
        }
    }

    /** Connects (the QUIC handshake), giving up after 60 s. */
    static Future<QuicChannel> connect(Channel clientChannel, InetSocketAddress server) {
        return connect(clientChannel, server, 60_000);
    }

    /**
     * Connects, giving up after {@code timeoutMillis}. Netty's QUIC server closes a connection whose handshake failed
     * without sending CONNECTION_CLOSE, so the client learns only by its timeout.
     */
    static Future<QuicChannel> connect(Channel clientChannel, InetSocketAddress server, int timeoutMillis) {
        return QuicChannel.newBootstrap(clientChannel).handler(new Http3ClientConnectionHandler())
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, timeoutMillis)
                .remoteAddress(server).localAddress(clientChannel.localAddress()).connect();
    }

    /** {@code GET /} on an established connection; the promise gets the body. */
    static Future<String> get(QuicChannel quic, String authority) throws InterruptedException {
        Promise<String> body = quic.eventLoop().newPromise();
        StringBuilder sb = new StringBuilder();
        QuicStreamChannel stream = Http3.newRequestStream(quic, new Http3RequestStreamInboundHandler() {
            @Override
            protected void channelRead(ChannelHandlerContext c, Http3HeadersFrame frame) {
                ReferenceCountUtil.release(frame);
            }

            @Override
            protected void channelRead(ChannelHandlerContext c, Http3DataFrame frame) {
                ByteBuf content = frame.content();
                sb.append(content.toString(StandardCharsets.US_ASCII));
                ReferenceCountUtil.release(frame);
            }

            @Override
            protected void channelInputClosed(ChannelHandlerContext c) {
                body.trySuccess(sb.toString());
                c.close();
            }
        }).sync().getNow();
        Http3HeadersFrame request = new DefaultHttp3HeadersFrame();
        request.headers().method("GET").path("/").authority(authority).scheme("https");
        stream.writeAndFlush(request).addListener(QuicStreamChannel.SHUTDOWN_OUTPUT);
        return body;
    }
}
