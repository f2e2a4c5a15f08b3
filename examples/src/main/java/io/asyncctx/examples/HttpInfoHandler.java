package io.asyncctx.examples;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
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
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.ssl.SslHandler;

import java.nio.charset.StandardCharsets;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.function.Supplier;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * Answers {@code GET /} (HTTP/1.1 with keep-alive, or one HTTP/2 stream) with 200 and a short body naming the TLS
 * version, cipher suite, HTTP version and client certificate subject, and {@code GET /metrics} with the server's
 * metrics in Prometheus text format; {@code HEAD} gets the same status and headers without a body; anything else gets
 * 404 or 405.
 *
 * <p>Threading: one instance per channel (an HTTP/1.1 connection or an HTTP/2 stream), on its event loop.
 */
final class HttpInfoHandler extends SimpleChannelInboundHandler<FullHttpRequest> {

    private final Supplier<String> metrics;

    HttpInfoHandler(Supplier<String> metrics) {
        this.metrics = metrics;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
        ConnectionGuard guard = Connections.guard(ctx.channel());
        if (guard != null) {
            guard.requestStarted();
        }
        HttpResponseStatus status;
        String text;
        String contentType = "text/plain; charset=utf-8";
        // HEAD gets GET's status and headers with no body (RFC 9110, 9.3.2), as nginx answers it.
        boolean head = HttpMethod.HEAD.equals(req.method());
        boolean get = head || HttpMethod.GET.equals(req.method());
        if (get && "/metrics".equals(req.uri())) {
            status = HttpResponseStatus.OK;
            text = metrics.get();
            contentType = "text/plain; version=0.0.4; charset=utf-8";
        } else if (!get) {
            status = HttpResponseStatus.METHOD_NOT_ALLOWED;
            text = "only GET and HEAD are served\n";
        } else if (!"/".equals(req.uri())) {
            status = HttpResponseStatus.NOT_FOUND;
            text = "not found: " + req.uri() + "\n";
        } else {
            status = HttpResponseStatus.OK;
            text = hello(ctx, req);
        }
        ByteBuf body = Unpooled.copiedBuffer(text, StandardCharsets.UTF_8);
        int length = body.readableBytes();
        if (head) {
            // No DATA frame: over HTTP/2 the HEADERS frame then carries END_STREAM; over HTTP/1.1 nothing follows.
            body.release();
            body = Unpooled.EMPTY_BUFFER;
        }
        FullHttpResponse res = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, body);
        res.headers().set(HttpHeaderNames.CONTENT_TYPE, contentType);
        HttpUtil.setContentLength(res, length);
        if (status == HttpResponseStatus.METHOD_NOT_ALLOWED) {
            res.headers().set(HttpHeaderNames.ALLOW, "GET, HEAD");
        }
        boolean h2 = ctx.channel() instanceof Http2StreamChannel;
        // Draining (SIGTERM): HTTP/1.1 says Connection: close and closes after the response; HTTP/2 has sent GOAWAY.
        boolean keepAlive = HttpUtil.isKeepAlive(req) && (h2 || guard == null || !guard.draining());
        HttpUtil.setKeepAlive(res, keepAlive);
        ChannelFuture written = ctx.writeAndFlush(res);
        if (guard != null) {
            written.addListener(f -> guard.requestDone(f.isSuccess()));
        }
        if (!keepAlive && !h2) {
            written.addListener(ChannelFutureListener.CLOSE);
        }
    }

    /**
     * The body of {@code GET /}: TLS version, cipher suite, HTTP version, and the client certificate's subject when the
     * client sent one.
     */
    static String hello(ChannelHandlerContext ctx, FullHttpRequest req) {
        boolean h2 = ctx.channel() instanceof Http2StreamChannel;
        Channel connection = h2 ? ctx.channel().parent() : ctx.channel();
        SSLEngine engine = connection.pipeline().get(SslHandler.class).engine();
        SSLSession session = engine.getSession();
        String client = client(engine, session);
        return "hello from netty-async-ctx over " + session.getProtocol() + " " + session.getCipherSuite() + ", "
                + (h2 ? "HTTP/2" : req.protocolVersion().text()) + ", " + client + "\n";
    }

    private static String client(SSLEngine engine, SSLSession session) {
        if (!engine.getNeedClientAuth() && !engine.getWantClientAuth()) {
            // no certificate was asked for: skip getPeerCertificates(), which would build an exception with its stack
            // trace on every request (~4 us of loop CPU per handshake under h2load storms, async-profiler)
            return "no client certificate";
        }
        try {
            Certificate[] peer = session.getPeerCertificates();
            return "client " + ((X509Certificate) peer[0]).getSubjectX500Principal().getName();
        } catch (SSLPeerUnverifiedException e) {
            return "no client certificate";
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        ctx.close();
    }
}
