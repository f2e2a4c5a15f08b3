package io.asyncctx.examples;

import io.asyncctx.quic.QuicAsyncSslContext;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http3.DefaultHttp3DataFrame;
import io.netty.handler.codec.http3.DefaultHttp3HeadersFrame;
import io.netty.handler.codec.http3.Http3DataFrame;
import io.netty.handler.codec.http3.Http3HeadersFrame;
import io.netty.handler.codec.http3.Http3RequestStreamInboundHandler;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.util.ReferenceCountUtil;

import java.nio.charset.StandardCharsets;
import java.util.function.Supplier;

/**
 * Answers one HTTP/3 request stream: {@code GET /} with the protocol, the TLS cipher and whether this connection's
 * private-key operation was offloaded (or signed inline under {@code --inline-below-us}); {@code GET /metrics} with the metrics in Prometheus text format; anything else
 * 404 or 405.
 *
 * <p>Threading: one instance per request stream, on its event loop.
 */
final class Http3InfoHandler extends Http3RequestStreamInboundHandler {

    private final QuicAsyncSslContext ctx;
    private final Supplier<String> metrics;
    private CharSequence method;
    private CharSequence path;

    Http3InfoHandler(QuicAsyncSslContext ctx, Supplier<String> metrics) {
        this.ctx = ctx;
        this.metrics = metrics;
    }

    @Override
    protected void channelRead(ChannelHandlerContext c, Http3HeadersFrame frame) {
        method = frame.headers().method();
        path = frame.headers().path();
        ReferenceCountUtil.release(frame);
    }

    @Override
    protected void channelRead(ChannelHandlerContext c, Http3DataFrame frame) {
        ReferenceCountUtil.release(frame);
    }

    @Override
    protected void channelInputClosed(ChannelHandlerContext c) {
        String status = "200";
        String contentType = "text/plain; charset=utf-8";
        String text;
        if (method == null || !"GET".contentEquals(method)) {
            status = "405";
            text = "only GET is served\n";
        } else if (path != null && "/metrics".contentEquals(path)) {
            text = metrics.get();
            contentType = "text/plain; version=0.0.4; charset=utf-8";
        } else if (path == null || !"/".contentEquals(path)) {
            status = "404";
            text = "not found: " + path + "\n";
        } else {
            QuicChannel quic = (QuicChannel) c.channel().parent();
            String how = ctx.offloadedOperations(quic) > 0 ? "yes"
                    : ctx.inlineOperations(quic) > 0 ? "no (signed inline on the event loop)" : "no (resumed session)";
            text = "hello from netty-async-ctx over HTTP/3 (QUIC) " + quic.sslEngine().getSession().getCipherSuite()
                    + "; key operation offloaded: " + how + "; QUIC key operations offloaded so far: "
                    + ctx.offloadedOperations() + ", signed inline: " + ctx.inlineOperations() + "\n";
        }
        byte[] body = text.getBytes(StandardCharsets.UTF_8);
        Http3HeadersFrame headers = new DefaultHttp3HeadersFrame();
        headers.headers().status(status).add("content-type", contentType).addInt("content-length", body.length);
        c.write(headers);
        c.writeAndFlush(new DefaultHttp3DataFrame(Unpooled.wrappedBuffer(body)))
                .addListener(QuicStreamChannel.SHUTDOWN_OUTPUT);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
        c.close();
    }
}
