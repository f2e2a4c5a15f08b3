package io.asyncctx.examples;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.ssl.SslHandler;

import java.nio.charset.StandardCharsets;
import java.util.function.Supplier;
import javax.net.ssl.SSLSession;

/**
 * Answers HTTP/1.1 {@code GET /} (keep-alive) with 200 and a short body naming the negotiated TLS protocol and
 * cipher, and {@code GET /metrics} with the server's metrics in Prometheus text format; anything else gets 404 or 405.
 *
 * <p>Threading: one instance per channel, on its event loop.
 */
final class HttpInfoHandler extends SimpleChannelInboundHandler<FullHttpRequest> {

    private final Supplier<String> metrics;

    HttpInfoHandler(Supplier<String> metrics) {
        this.metrics = metrics;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
        HttpResponseStatus status;
        String text;
        String contentType = "text/plain; charset=utf-8";
        if (HttpMethod.GET.equals(req.method()) && "/metrics".equals(req.uri())) {
            status = HttpResponseStatus.OK;
            text = metrics.get();
            contentType = "text/plain; version=0.0.4; charset=utf-8";
        } else if (!HttpMethod.GET.equals(req.method())) {
            status = HttpResponseStatus.METHOD_NOT_ALLOWED;
            text = "only GET is served\n";
        } else if (!"/".equals(req.uri())) {
            status = HttpResponseStatus.NOT_FOUND;
            text = "not found: " + req.uri() + "\n";
        } else {
            SslHandler ssl = ctx.pipeline().get(SslHandler.class);
            SSLSession session = ssl.engine().getSession();
            status = HttpResponseStatus.OK;
            text = "hello from netty-async-ctx over " + session.getProtocol() + " " + session.getCipherSuite() + "\n";
        }
        ByteBuf body = Unpooled.copiedBuffer(text, StandardCharsets.UTF_8);
        FullHttpResponse res = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, body);
        res.headers().set(HttpHeaderNames.CONTENT_TYPE, contentType);
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
