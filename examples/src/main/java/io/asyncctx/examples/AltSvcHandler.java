package io.asyncctx.examples;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http.HttpResponse;

import java.util.function.Supplier;

/**
 * Advertises the HTTP/3 listener on HTTP/1.1 responses: adds {@code Alt-Svc: h3=":PORT"} when the supplier gives a
 * value (the server runs with {@code --http3}), nothing otherwise.
 *
 * <p>Threading: sharable; runs on each channel's event loop.
 */
@io.netty.channel.ChannelHandler.Sharable
final class AltSvcHandler extends ChannelOutboundHandlerAdapter {

    private final Supplier<String> altSvc;

    AltSvcHandler(Supplier<String> altSvc) {
        this.altSvc = altSvc;
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) throws Exception {
        if (msg instanceof HttpResponse res) {
            String value = altSvc.get();
            if (value != null) {
                res.headers().set("alt-svc", value);
            }
        }
        ctx.write(msg, promise);
    }
}
