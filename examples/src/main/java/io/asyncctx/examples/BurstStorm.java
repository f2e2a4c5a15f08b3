package io.asyncctx.examples;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.ScheduledFuture;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.HdrHistogram.Recorder;

/**
 * Open-loop handshake bursts: every interval, {@code size} new connections are opened at once (in one task of one
 * client event loop, so that their SYNs and ClientHellos reach the server together), each doing one full TLS handshake
 * (no resumption: the client context offers no session), one {@code GET /} and a close. Unlike a closed-loop storm, a
 * burst does not wait for the last one to finish: a slow server gets the next burst on time, so the work of a burst
 * piles up on the server's loop the way arrivals do in production.
 *
 * <p>A connection counts as a handshake when its {@code GET} was answered with 200; then, and only then, its latency
 * (connect to handshake done, measured when the handshake completed) goes to the handshake recorder, so that the
 * recorder and the count hold the same connections. Anything else (connect, handshake or request failed, an answer
 * other than 200, closed before the answer) counts as a failure and records no latency.
 *
 * <p>Threading: {@link #start} and {@link #stop} from any thread; the bursts and their connections run on one event
 * loop of the given group.
 */
final class BurstStorm {

    private final Bootstrap bootstrap;
    private final String host;
    private final int port;
    private final int size;
    private final Duration interval;
    private final BooleanSupplier stopped;
    private final Recorder latency;
    private final AtomicLong ok;
    private final AtomicLong failed;
    private final long maxMicros;
    private volatile ScheduledFuture<?> schedule;

    BurstStorm(EventLoopGroup group, Class<? extends SocketChannel> channelClass, SslContext sslContext,
               LoadClient.Settings s, BooleanSupplier stopped, Recorder latency, AtomicLong ok, AtomicLong failed,
               long maxMicros) {
        this.host = s.host();
        this.port = s.port();
        this.size = s.burst();
        this.interval = s.burstInterval();
        this.stopped = stopped;
        this.latency = latency;
        this.ok = ok;
        this.failed = failed;
        this.maxMicros = maxMicros;
        int timeoutMillis = (int) Math.min(Integer.MAX_VALUE, s.timeout().toMillis());
        this.bootstrap = new Bootstrap().group(group.next()).channel(channelClass)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, timeoutMillis)
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.SO_LINGER, 0)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        SslHandler ssl = sslContext.newHandler(ch.alloc());
                        ssl.setHandshakeTimeoutMillis(timeoutMillis);
                        ch.pipeline().addLast(ssl, new HttpClientCodec(), new HttpObjectAggregator(64 * 1024));
                    }
                });
    }

    /** Starts the bursts: the first one now, then one every interval. */
    void start() {
        long every = interval.toNanos();
        schedule = bootstrap.config().group().scheduleAtFixedRate(this::burst, 0, every, TimeUnit.NANOSECONDS);
    }

    /** Stops the bursts; connections in flight end on their own (bounded by the timeout). */
    void stop() {
        ScheduledFuture<?> s = schedule;
        if (s != null) {
            s.cancel(false);
        }
    }

    private void burst() {
        if (stopped.getAsBoolean()) {
            stop();
            return;
        }
        for (int i = 0; i < size; i++) {
            long start = System.nanoTime();
            bootstrap.connect(host, port).addListener((ChannelFuture f) -> {
                if (!f.isSuccess()) {
                    failed.incrementAndGet();
                    return;
                }
                Channel ch = f.channel();
                ch.pipeline().get(SslHandler.class).handshakeFuture().addListener(h -> {
                    if (!h.isSuccess()) {
                        failed.incrementAndGet();
                        ch.close();
                        return;
                    }
                    ch.pipeline().addLast(new OneRequest((System.nanoTime() - start) / 1000));
                });
            });
        }
    }

    /** Sends one {@code GET /}, counts the answer (and records the handshake's latency on a 200), closes. */
    private final class OneRequest extends SimpleChannelInboundHandler<FullHttpResponse> {
        private final long handshakeMicros;
        private boolean done;

        OneRequest(long handshakeMicros) {
            this.handshakeMicros = handshakeMicros;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            FullHttpRequest req = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/");
            req.headers().set(HttpHeaderNames.HOST, "localhost");
            req.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            ctx.writeAndFlush(req);
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, FullHttpResponse res) {
            end(HttpResponseStatus.OK.equals(res.status()));
            // The request said "Connection: close": let the server close first (a reset from our SO_LINGER 0 close
            // would hit a server still reading); close ourselves only if it has not done so within a second.
            ctx.executor().schedule(() -> ctx.close(), 1, TimeUnit.SECONDS);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            end(false);
            ctx.fireChannelInactive();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            end(false);
            ctx.close();
        }

        private void end(boolean success) {
            if (done) {
                return;
            }
            done = true;
            if (success) {
                latency.recordValue(Math.min(maxMicros, handshakeMicros));
                ok.incrementAndGet();
            } else {
                failed.incrementAndGet();
            }
        }
    }
}
