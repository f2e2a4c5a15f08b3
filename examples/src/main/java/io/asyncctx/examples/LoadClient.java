package io.asyncctx.examples;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
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
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.util.concurrent.DefaultThreadFactory;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import javax.net.ssl.SSLException;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * A TLS load client for any HTTPS server: a handshake storm (N virtual clients, each connecting, doing one full TLS
 * handshake, closing and starting over) and M established keep-alive connections doing {@code GET /} at a fixed pace,
 * whose round trips show what the storm does to a server's existing connections.
 *
 * <p>Every handshake is a full one: the client context is created without a peer host, so BoringSSL never offers a
 * session for resumption. The client does not check the server's certificate chain (an insecure trust manager, which
 * also keeps the JDK's slow chain checks out of the client's CPU), but BoringSSL still verifies the server's
 * CertificateVerify signature. Storm connections close with SO_LINGER 0 (a reset), so that tens of thousands of them
 * do not fill the port range with TIME_WAIT sockets. The established connections run on their own event loop, so that
 * a busy storm loop does not delay their round trips on the client side; their round trips are recorded with
 * HdrHistogram's correction for coordinated omission at the request interval (a server that stalls for 1 s counts as
 * 1 s of slow requests, not one). With {@link Settings#burst()}, open-loop bursts of new connections (each one
 * handshake and one request) arrive at a fixed interval instead of, or besides, the closed-loop storm.
 *
 * <p>Threading: create, {@link #run} and {@link #close} from one thread that is not one of its event loops. The
 * storm and the established connections run on the client's own event loops (epoll when available).
 */
public final class LoadClient implements AutoCloseable {

    /** The longest value the histograms track, in microseconds (60 s). */
    private static final long MAX_MICROS = TimeUnit.SECONDS.toMicros(60);

    /**
     * What to run.
     *
     * @param host the server's address
     * @param port the server's port
     * @param concurrency virtual clients in the handshake storm (0 for none)
     * @param established keep-alive connections doing {@code GET /} (0 for none)
     * @param requestInterval the pace of each established connection's requests
     * @param timeout the bound of one connect, one handshake and one request
     * @param rate the storm's total handshakes per second, spread over the virtual clients (each waits for its next
     *        start slot; a client that is late takes the next free slot, so there is no catching up in bursts); 0 for
     *        none: each client starts its next handshake as soon as the last one ends
     * @param burst new connections opened at once every {@code burstInterval}, each doing one full handshake, one
     *        {@code GET /} and a close (an open-loop burst, see {@code BurstStorm}); 0 for none. Runs besides the
     *        storm of {@code concurrency} clients (give concurrency 0 for bursts alone)
     * @param burstInterval the time between two bursts' starts
     */
    public record Settings(String host, int port, int concurrency, int established, Duration requestInterval,
                           Duration timeout, double rate, int burst, Duration burstInterval) {

        /** Settings without bursts. */
        public Settings(String host, int port, int concurrency, int established, Duration requestInterval,
                        Duration timeout, double rate) {
            this(host, port, concurrency, established, requestInterval, timeout, rate, 0, Duration.ofSeconds(1));
        }

        /** Settings without a rate limit. */
        public Settings(String host, int port, int concurrency, int established, Duration requestInterval,
                        Duration timeout) {
            this(host, port, concurrency, established, requestInterval, timeout, 0);
        }

        public Settings {
            Objects.requireNonNull(host, "host");
            Objects.requireNonNull(requestInterval, "requestInterval");
            Objects.requireNonNull(timeout, "timeout");
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("port " + port + ": expected 1..65535");
            }
            if (concurrency < 0 || established < 0) {
                throw new IllegalArgumentException("concurrency " + concurrency + ", established " + established
                        + ": expected 0 or more");
            }
            if (requestInterval.isNegative() || requestInterval.isZero() || timeout.isNegative() || timeout.isZero()) {
                throw new IllegalArgumentException("requestInterval and timeout must be positive");
            }
            if (!(rate >= 0) || Double.isInfinite(rate)) {
                throw new IllegalArgumentException("rate " + rate + ": expected handshakes/s, 0 for no limit");
            }
            Objects.requireNonNull(burstInterval, "burstInterval");
            if (burst < 0 || burstInterval.isNegative() || burstInterval.isZero()) {
                throw new IllegalArgumentException("burst " + burst + " every " + burstInterval
                        + ": expected 0 or more connections every positive interval");
            }
        }
    }

    /**
     * The outcome of one measured run.
     *
     * @param handshakes full handshakes completed in the measured window
     * @param handshakeFailures connects or handshakes that failed or timed out in the window
     * @param seconds the measured window
     * @param handshakeMicros handshake latency (connect to handshake done), microseconds
     * @param requests responses received on the established connections in the window
     * @param requestFailures established connections that failed (or responses that were not 200)
     * @param roundTripMicros round trips of the established connections (corrected for coordinated omission), us
     * @param clientCpuSeconds CPU time of the client's event-loop threads in the window
     * @param probeCpuSeconds what each CPU probe given to {@link #run} counted in the window, seconds
     * @param stormCpuSeconds CPU time of the storm's event-loop threads alone in the window (part of
     *        {@code clientCpuSeconds})
     */
    public record Result(long handshakes, long handshakeFailures, double seconds, Histogram handshakeMicros,
                         long requests, long requestFailures, Histogram roundTripMicros, double clientCpuSeconds,
                         double[] probeCpuSeconds, double stormCpuSeconds) {

        /** Completed handshakes per second. */
        public double handshakesPerSecond() {
            return handshakes / seconds;
        }

        /** The share of one core that the client's loops used, 0..threads. */
        public double clientCpuShare() {
            return clientCpuSeconds / seconds;
        }

        /** The share of one core that the storm's loops used, 0..stormThreads. */
        public double stormCpuShare() {
            return stormCpuSeconds / seconds;
        }
    }

    private static final String STORM_THREADS = "load-client-storm";

    private final EventLoopGroup stormGroup;
    private final EventLoopGroup establishedGroup;
    private final Class<? extends SocketChannel> channelClass;
    private final SslContext sslContext;
    private final List<Thread> clientThreads = new ArrayList<>();

    /**
     * Starts the client's event loops: {@code stormThreads} for the storm and one for the established connections.
     *
     * @param stormThreads event loops of the storm, at least 1
     */
    public LoadClient(int stormThreads) throws SSLException {
        if (stormThreads < 1) {
            throw new IllegalArgumentException("stormThreads " + stormThreads + ": expected at least 1");
        }
        // Only TLS 1.3, without a peer host: no session is ever offered for resumption.
        sslContext = SslContextBuilder.forClient().sslProvider(SslProvider.OPENSSL)
                .trustManager(InsecureTrustManagerFactory.INSTANCE).protocols("TLSv1.3").build();
        boolean epoll = Epoll.isAvailable();
        channelClass = epoll ? EpollSocketChannel.class : NioSocketChannel.class;
        stormGroup = new MultiThreadIoEventLoopGroup(stormThreads, new RecordingThreadFactory(STORM_THREADS),
                epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory());
        establishedGroup = new MultiThreadIoEventLoopGroup(1, new RecordingThreadFactory("load-client-rtt"),
                epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory());
    }

    /** Names the client's threads and remembers them, so that their CPU time can be read. */
    private final class RecordingThreadFactory extends DefaultThreadFactory {
        RecordingThreadFactory(String name) {
            super(name, true);
        }

        @Override
        protected Thread newThread(Runnable r, String name) {
            Thread t = super.newThread(r, name);
            synchronized (clientThreads) {
                clientThreads.add(t);
            }
            return t;
        }
    }

    /**
     * Opens the established connections, runs the storm for {@code warmup} (not counted) and then for
     * {@code duration} (measured), and stops everything. Every wait is bounded by the settings' timeout.
     *
     * @param cpuProbes CPU-time counters in nanoseconds (for example a server process's), read at the start and the
     *        end of the measured window
     * @throws IllegalStateException when an established connection cannot be opened
     */
    public Result run(Settings s, Duration warmup, Duration duration, LongSupplier... cpuProbes)
            throws InterruptedException {
        Objects.requireNonNull(s, "settings");
        Bootstrap storm = bootstrap(stormGroup, s, false);
        Bootstrap est = bootstrap(establishedGroup, s, true);
        Recorder handshakeRec = new Recorder(MAX_MICROS, 3);
        Recorder rttRec = new Recorder(MAX_MICROS, 3);
        AtomicLong handshakes = new AtomicLong();
        AtomicLong handshakeFailures = new AtomicLong();
        AtomicLong requests = new AtomicLong();
        AtomicLong requestFailures = new AtomicLong();
        State state = new State();
        Pacer pacer = s.rate() > 0 ? new Pacer(s.rate()) : null;

        List<Channel> conns = new ArrayList<>();
        BurstStorm bursts = null;
        long intervalMicros = Math.max(1, TimeUnit.NANOSECONDS.toMicros(s.requestInterval().toNanos()));
        try {
            for (int i = 0; i < s.established(); i++) {
                ChannelFuture f = est.connect(s.host(), s.port());
                if (!f.await(s.timeout().toMillis()) || !f.isSuccess()) {
                    throw new IllegalStateException("cannot connect an established connection to " + s.host() + ":"
                            + s.port() + ": " + f.cause());
                }
                Channel ch = f.channel();
                conns.add(ch);
                SslHandler ssl = ch.pipeline().get(SslHandler.class);
                if (!ssl.handshakeFuture().await(s.timeout().toMillis()) || !ssl.handshakeFuture().isSuccess()) {
                    throw new IllegalStateException("established connection: handshake failed: "
                            + ssl.handshakeFuture().cause());
                }
                ch.pipeline().addLast(new Pinger(state, s.requestInterval(), intervalMicros, rttRec, requests,
                        requestFailures));
            }
            CountDownLatch stormDone = new CountDownLatch(s.concurrency());
            for (int i = 0; i < s.concurrency(); i++) {
                new StormClient(storm, stormGroup.next(), pacer, s, state, handshakeRec, handshakes,
                        handshakeFailures, stormDone).next();
            }
            if (s.burst() > 0) {
                bursts = new BurstStorm(stormGroup, channelClass, sslContext, s, () -> state.stopped, handshakeRec,
                        handshakes, handshakeFailures, MAX_MICROS);
                bursts.start();
            }
            TimeUnit.NANOSECONDS.sleep(warmup.toNanos());
            // Start of the measured window: reset what the warm-up recorded.
            handshakeRec.reset();
            rttRec.reset();
            handshakes.set(0);
            handshakeFailures.set(0);
            requests.set(0);
            requestFailures.set(0);
            long[] probe0 = new long[cpuProbes.length];
            for (int i = 0; i < cpuProbes.length; i++) {
                probe0[i] = cpuProbes[i].getAsLong();
            }
            long cpu0 = clientCpuNanos(false);
            long storm0 = clientCpuNanos(true);
            long t0 = System.nanoTime();
            TimeUnit.NANOSECONDS.sleep(duration.toNanos());
            double[] probes = new double[cpuProbes.length];
            for (int i = 0; i < cpuProbes.length; i++) {
                probes[i] = (cpuProbes[i].getAsLong() - probe0[i]) / 1e9;
            }
            Histogram hs = handshakeRec.getIntervalHistogram();
            Histogram rtt = rttRec.getIntervalHistogram();
            long nHandshakes = handshakes.get();
            long nHsFail = handshakeFailures.get();
            long nReq = requests.get();
            long nReqFail = requestFailures.get();
            double seconds = (System.nanoTime() - t0) / 1e9;
            double cpu = (clientCpuNanos(false) - cpu0) / 1e9;
            double stormCpu = (clientCpuNanos(true) - storm0) / 1e9;
            state.stopped = true;
            if (bursts != null) {
                bursts.stop();
            }
            // Each virtual client ends after its current handshake, bounded by the timeout.
            stormDone.await(s.timeout().toMillis() + 1000, TimeUnit.MILLISECONDS);
            return new Result(nHandshakes, nHsFail, seconds, hs, nReq, nReqFail, rtt, cpu, probes, stormCpu);
        } finally {
            state.stopped = true;
            if (bursts != null) {
                bursts.stop();
            }
            for (Channel ch : conns) {
                ch.close().await(s.timeout().toMillis());
            }
        }
    }

    private long clientCpuNanos(boolean stormOnly) {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        long sum = 0;
        synchronized (clientThreads) {
            for (Thread t : clientThreads) {
                if (stormOnly && !t.getName().startsWith(STORM_THREADS)) {
                    continue;
                }
                long c = mx.getThreadCpuTime(t.getId());
                if (c > 0) {
                    sum += c;
                }
            }
        }
        return sum;
    }

    private Bootstrap bootstrap(EventLoopGroup group, Settings s, boolean http) {
        int timeoutMillis = (int) Math.min(Integer.MAX_VALUE, s.timeout().toMillis());
        Bootstrap b = new Bootstrap().group(group).channel(channelClass)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, timeoutMillis)
                .option(ChannelOption.TCP_NODELAY, true);
        if (!http) {
            b.option(ChannelOption.SO_LINGER, 0);
        }
        return b.handler(new ChannelInitializer<SocketChannel>() {
            @Override
            protected void initChannel(SocketChannel ch) {
                // No peer host: BoringSSL offers no session, every handshake is a full one.
                SslHandler ssl = sslContext.newHandler(ch.alloc());
                ssl.setHandshakeTimeoutMillis(timeoutMillis);
                ch.pipeline().addLast(ssl);
                if (http) {
                    ch.pipeline().addLast(new HttpClientCodec(), new HttpObjectAggregator(64 * 1024));
                }
            }
        });
    }

    /**
     * Hands out start slots {@code 1/rate} apart to the virtual clients of a rate-limited storm. A slot that nobody
     * took in time is lost rather than owed, so a client that was late does not start a burst; at most
     * {@code concurrency} clients wait at once (each on a scheduled task of its loop), nothing queues beyond that.
     */
    private static final class Pacer {
        private final long intervalNanos;
        private final AtomicLong nextSlot = new AtomicLong(System.nanoTime());

        Pacer(double rate) {
            this.intervalNanos = Math.max(1, Math.round(1e9 / rate));
        }

        /** Reserves the next slot; returns the nanoseconds to wait for it (0 or more). */
        long reserve() {
            while (true) {
                long prev = nextSlot.get();
                long now = System.nanoTime();
                long slot = prev - now > 0 ? prev : now;
                if (nextSlot.compareAndSet(prev, slot + intervalNanos)) {
                    return slot - now;
                }
            }
        }
    }

    /** Shared stop flag of one run. */
    private static final class State {
        volatile boolean stopped;
    }

    /** One virtual client of the storm: connect, handshake, close, again; on its channel's event loop. */
    private static final class StormClient {
        private final Bootstrap bootstrap;
        private final EventLoop loop;
        private final Pacer pacer;
        private final Settings settings;
        private final State state;
        private final Recorder latency;
        private final AtomicLong ok;
        private final AtomicLong failed;
        private final CountDownLatch done;

        StormClient(Bootstrap bootstrap, EventLoop loop, Pacer pacer, Settings settings, State state,
                    Recorder latency, AtomicLong ok, AtomicLong failed, CountDownLatch done) {
            this.bootstrap = bootstrap;
            this.loop = loop;
            this.pacer = pacer;
            this.settings = settings;
            this.state = state;
            this.latency = latency;
            this.ok = ok;
            this.failed = failed;
            this.done = done;
        }

        void next() {
            if (state.stopped) {
                done.countDown();
                return;
            }
            if (pacer != null) {
                long wait = pacer.reserve();
                if (wait > 0) {
                    loop.schedule(this::connect, wait, TimeUnit.NANOSECONDS);
                    return;
                }
            }
            connect();
        }

        private void connect() {
            if (state.stopped) {
                done.countDown();
                return;
            }
            long start = System.nanoTime();
            bootstrap.connect(settings.host(), settings.port()).addListener((ChannelFuture f) -> {
                if (!f.isSuccess()) {
                    failed.incrementAndGet();
                    // Back off a little so that a refusing server does not turn the storm into a busy loop.
                    f.channel().eventLoop().schedule(this::next, 10, TimeUnit.MILLISECONDS);
                    return;
                }
                Channel ch = f.channel();
                ch.pipeline().get(SslHandler.class).handshakeFuture().addListener(h -> {
                    if (h.isSuccess()) {
                        latency.recordValue(Math.min(MAX_MICROS, (System.nanoTime() - start) / 1000));
                        ok.incrementAndGet();
                    } else {
                        failed.incrementAndGet();
                    }
                    ch.close();
                    next();
                });
            });
        }
    }

    /** Sends {@code GET /} at a fixed pace on one established connection and records each round trip. */
    private static final class Pinger extends SimpleChannelInboundHandler<FullHttpResponse> {
        private final State state;
        private final long intervalNanos;
        private final long intervalMicros;
        private final Recorder rtt;
        private final AtomicLong ok;
        private final AtomicLong failed;
        private long sentAt;

        Pinger(State state, Duration interval, long intervalMicros, Recorder rtt, AtomicLong ok, AtomicLong failed) {
            this.state = state;
            this.intervalNanos = interval.toNanos();
            this.intervalMicros = intervalMicros;
            this.rtt = rtt;
            this.ok = ok;
            this.failed = failed;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            ctx.channel().eventLoop().execute(() -> send(ctx));
        }

        private void send(ChannelHandlerContext ctx) {
            if (state.stopped || !ctx.channel().isActive()) {
                return;
            }
            FullHttpRequest req = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/");
            req.headers().set(HttpHeaderNames.HOST, "localhost");
            req.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
            sentAt = System.nanoTime();
            ctx.writeAndFlush(req);
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, FullHttpResponse res) {
            long now = System.nanoTime();
            long micros = Math.min(MAX_MICROS, (now - sentAt) / 1000);
            rtt.recordValueWithExpectedInterval(micros, intervalMicros);
            if (HttpResponseStatus.OK.equals(res.status())) {
                ok.incrementAndGet();
            } else {
                failed.incrementAndGet();
            }
            long wait = sentAt + intervalNanos - now;
            if (wait <= 0) {
                send(ctx);
            } else {
                ctx.executor().schedule(() -> send(ctx), wait, TimeUnit.NANOSECONDS);
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (!state.stopped) {
                failed.incrementAndGet();
            }
            ctx.fireChannelInactive();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    /** Stops the client's event loops; waits up to 10 s. */
    @Override
    public void close() throws InterruptedException {
        stormGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        establishedGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        stormGroup.terminationFuture().await(10, TimeUnit.SECONDS);
        establishedGroup.terminationFuture().await(10, TimeUnit.SECONDS);
    }
}
