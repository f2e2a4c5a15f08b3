package io.asyncctx.examples;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.AsyncSslContextBuilder;
import io.asyncctx.netty.InlinePolicy;
import io.asyncctx.netty.MicrometerOffloadMetrics;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.asyncctx.netty.KeylessKeyManager;
import io.asyncctx.testkit.BlockingKeyMethod;
import io.asyncctx.netty.OffloadConfig;
import io.asyncctx.quic.QuicAsyncSslContext;
import io.asyncctx.quic.QuicAsyncSslContextBuilder;
import io.netty.handler.codec.http3.Http3;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringServerSocketChannel;
import io.netty.handler.ssl.OpenSslContextOption;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SniHandler;
import io.netty.handler.ssl.SslProvider;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.security.PrivateKey;
import java.time.Duration;
import java.util.List;
import java.security.cert.X509Certificate;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.UnaryOperator;
import javax.net.ssl.SSLException;

/**
 * The example TLS server: binds 127.0.0.1, serves HTTP/2 and HTTP/1.1 over TLS (chosen by ALPN), with handshakes
 * in one of three modes.
 * <ul>
 *   <li>{@code offload}: through netty-async-ctx's jobs (the library);</li>
 *   <li>{@code inline}: stock Netty, the key inside BoringSSL, signing on the event loop;</li>
 *   <li>{@code blocking}: the engine called synchronously on the event loop (the naive baseline).</li>
 * </ul>
 *
 * <p>Threading: start and close from one thread (not an event loop).
 */
public final class ExampleServer implements AutoCloseable {

    /** How handshakes sign. */
    public enum Mode {
        /** Through AsyncJobs, resumed by wait fd or callback. */
        OFFLOAD,
        /** Stock Netty: BoringSSL signs with the key on the event loop. */
        INLINE,
        /** The engine called synchronously on the event loop. */
        BLOCKING;

        static Mode parse(String s) {
            return valueOf(s.toUpperCase(Locale.ROOT));
        }
    }

    /** Which Netty transport. */
    public enum Transport {
        EPOLL, IO_URING, NIO;

        static Transport parse(String s) {
            return valueOf(s.toUpperCase(Locale.ROOT).replace('-', '_'));
        }

        IoHandlerFactory factory() {
            return switch (this) {
                case EPOLL -> EpollIoHandler.newFactory();
                case IO_URING -> IoUringIoHandler.newFactory();
                case NIO -> NioIoHandler.newFactory();
            };
        }

        Class<? extends ServerChannel> serverChannel() {
            return switch (this) {
                case EPOLL -> EpollServerSocketChannel.class;
                case IO_URING -> IoUringServerSocketChannel.class;
                case NIO -> NioServerSocketChannel.class;
            };
        }

        void checkAvailable() {
            if (this == EPOLL && !Epoll.isAvailable()) {
                throw new IllegalArgumentException("--transport epoll: not available here ("
                        + Epoll.unavailabilityCause() + "); use --transport nio");
            }
            if (this == IO_URING && !IoUring.isAvailable()) {
                throw new IllegalArgumentException("--transport io_uring: not available on this kernel ("
                        + IoUring.unavailabilityCause() + "); use --transport epoll");
            }
        }
    }

    private final EventLoopGroup group;
    private final Channel channel;
    private final AsyncSslContext asyncContext;
    private final PrometheusMeterRegistry registry;
    private final String host;
    private final Transport transport;
    private final AsyncEngine engine;
    private final X509Certificate[] chain;
    private final OffloadConfig.Notify notify;
    private final InlinePolicy inlinePolicy;
    private volatile Http3Listener http3;
    private final FailedHandshakes failures;
    private final Connections connections;
    private final TlsSettings settings;
    private final SslContext sslContext;
    private final Sites sites;
    private final SiteReloader reloader;

    /**
     * Builds the server's sites ({@code --site}) with the server's settings for every context (offload config and
     * metrics, inline policy, TLS settings); the server owns them and closes them after its event loops.
     */
    @FunctionalInterface
    interface SitesFactory {
        Sites create(UnaryOperator<AsyncSslContextBuilder> settings) throws IOException;
    }

    /**
     * A server to start: {@code mode}, the engine and chain are required, everything else has the example server's
     * defaults (127.0.0.1, an ephemeral port, epoll, one loop, the fd path (callback on NIO), no inline policy, the
     * default TLS settings and connection policy). Replaces the positional constructors.
     *
     * <p>Threading: a builder, for one thread; {@link #start()} starts the server on the calling thread (not an event
     * loop).
     */
    public static final class Builder {
        private final Mode mode;
        private AsyncEngine engine;
        private X509Certificate[] chain;
        private PrivateKey key;
        private String host = "127.0.0.1";
        private int port;
        private Transport transport = Transport.EPOLL;
        private int threads = 1;
        private OffloadConfig.Notify notify;
        private InlinePolicy inline = InlinePolicy.never();
        private TlsSettings settings = TlsSettings.defaults();
        private int handshakeStepsPerTurn;
        private ServerPolicy policy = ServerPolicy.defaults();
        private SitesFactory sitesFactory;

        private Builder(Mode mode) {
            this.mode = Objects.requireNonNull(mode, "mode");
        }

        /** The engine and certificate chain ({@code --site} servers set neither). */
        public Builder engine(AsyncEngine engine, X509Certificate[] chain) {
            this.engine = Objects.requireNonNull(engine, "engine");
            this.chain = Objects.requireNonNull(chain, "chain");
            return this;
        }

        /** The private key in memory: needed by {@code inline} mode only. */
        public Builder key(PrivateKey key) {
            this.key = key;
            return this;
        }

        /** Address and port to bind; port 0 picks a free one. */
        public Builder bind(String host, int port) {
            this.host = Objects.requireNonNull(host, "host");
            this.port = port;
            return this;
        }

        /** The transport and its event loop count. */
        public Builder transport(Transport transport, int threads) {
            this.transport = Objects.requireNonNull(transport, "transport");
            this.threads = threads;
            return this;
        }

        /** How a finished operation resumes its handshake; null for the transport's default. */
        public Builder notify(OffloadConfig.Notify notify) {
            this.notify = notify;
            return this;
        }

        /** Offload mode: the operations cheap enough to sign on the loop. */
        public Builder inline(InlinePolicy inline) {
            this.inline = Objects.requireNonNull(inline, "inline");
            return this;
        }

        /** TLS settings (ciphers, groups, ALPN, client certificates). */
        public Builder settings(TlsSettings settings) {
            this.settings = Objects.requireNonNull(settings, "settings");
            return this;
        }

        /** Offload mode: at most this many handshake steps per event-loop iteration (0 for no bound). */
        public Builder handshakeStepsPerTurn(int steps) {
            this.handshakeStepsPerTurn = steps;
            return this;
        }

        /** Timeouts, shutdown grace and the failed-handshake log. */
        Builder policy(ServerPolicy policy) {
            this.policy = Objects.requireNonNull(policy, "policy");
            return this;
        }

        /** Serve the sites this builds ({@code --site}) through Netty's SniHandler instead of one engine and chain. */
        Builder sites(SitesFactory sitesFactory) {
            this.sitesFactory = sitesFactory;
            return this;
        }

        /** Starts the server. */
        public ExampleServer start() throws SSLException, InterruptedException {
            OffloadConfig.Notify n = notify != null ? notify
                    : transport == Transport.NIO ? OffloadConfig.Notify.CALLBACK : OffloadConfig.Notify.FD;
            return new ExampleServer(host, port, mode, transport, threads, n, engine, chain, key, inline, settings,
                    handshakeStepsPerTurn, policy, sitesFactory);
        }
    }

    /** A builder for a server in {@code mode}. */
    public static Builder builder(Mode mode) {
        return new Builder(mode);
    }

    /**
     * Starts the server; with {@code sitesFactory} (not null), the sites it builds are served by Netty's
     * {@link SniHandler} (offload mode only; {@code engine}, {@code chain} and {@code key} are null), reloaded on SIGHUP
     * and on a change of their files.
     */
    private ExampleServer(String host, int port, Mode mode, Transport transport, int threads,
                          OffloadConfig.Notify notify, AsyncEngine engine, X509Certificate[] chain, PrivateKey key,
                          InlinePolicy inline, TlsSettings settings, int handshakeStepsPerTurn, ServerPolicy policy,
                          SitesFactory sitesFactory)
            throws SSLException, InterruptedException {
        Objects.requireNonNull(mode, "mode");
        Objects.requireNonNull(policy, "policy");
        Objects.requireNonNull(settings, "settings");
        this.host = host;
        this.transport = transport;
        this.engine = engine;
        this.chain = chain;
        this.notify = notify;
        this.inlinePolicy = Objects.requireNonNull(inline, "inline");
        transport.checkAvailable();
        if (transport == Transport.NIO && notify == OffloadConfig.Notify.FD) {
            throw new IllegalArgumentException("--notify fd needs raw fds, which NIO does not have; use --notify "
                    + "callback or --transport epoll");
        }
        Function<SocketChannel, ChannelHandler> tls;
        SslContext netty;
        AsyncSslContext async = null;
        registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        failures = new FailedHandshakes(policy.failedHandshakeLog(), registry, System.err);
        connections = new Connections(policy, failures);
        FunctionCounter.builder("server.requests.received", connections, Connections::requests)
                .description("HTTP requests received (HTTP/1.1 requests and HTTP/2 streams)").register(registry);
        FunctionCounter.builder("server.requests.answered", connections, Connections::answered)
                .description("HTTP responses written to the socket").register(registry);
        Gauge.builder("server.connections.open", connections, Connections::openCount)
                .description("TCP connections open (handshaking, busy or idle)").register(registry);
        this.settings = settings;
        Sites built = null;
        if (sitesFactory != null && mode != Mode.OFFLOAD) {
            throw new IllegalArgumentException("--site serves offloaded handshakes only; use --mode offload");
        }
        if (sitesFactory != null && !settings.serverCipherOrder()) {
            throw new IllegalArgumentException("--cipher-order client is applied to one context's connections; "
                    + "with --site use --cipher-order server");
        }
        switch (mode) {
            case OFFLOAD -> {
                if (sitesFactory != null) {
                    OffloadConfig config = OffloadConfig.builder().notify(notify)
                            .metrics(new MicrometerOffloadMetrics(registry))
                            .handshakeStepsPerLoopTurn(handshakeStepsPerTurn).build();
                    try {
                        built = sitesFactory.create(b -> {
                            b.offloadConfig(config).inlinePolicy(inline);
                            settings.applyTo(b);
                            return b;
                        });
                    } catch (IOException e) {
                        throw new IllegalArgumentException("--site: " + e.getMessage(), e);
                    }
                    io.asyncctx.netty.AsyncSniMapping mapping = built.mapping();
                    long timeoutMillis = policy.handshakeTimeout().toMillis();
                    tls = ch -> new SniHandler(mapping, timeoutMillis);
                    async = mapping.context(null); // the default site's
                    netty = async;
                    break;
                }
                AsyncSslContextBuilder b = AsyncSslContextBuilder.forServer(engine, chain)
                        .offloadConfig(OffloadConfig.builder().notify(notify)
                                .metrics(new MicrometerOffloadMetrics(registry))
                                .handshakeStepsPerLoopTurn(handshakeStepsPerTurn).build())
                        .inlinePolicy(inline);
                settings.applyTo(b);
                async = b.build();
                AsyncSslContext ctx = async;
                tls = ch -> ctx.newHandler(ch.alloc());
                netty = ctx;
            }
            case INLINE -> {
                if (key == null) {
                    throw new IllegalArgumentException("--mode inline needs the private key in memory (--key PEM or "
                            + "the generated default); engine '" + engine.name() + "' keeps it elsewhere");
                }
                // Netty's own key path only knows RSA and EC keys: Ed25519 needs a key manager that offers it.
                SslContextBuilder b = isEdDsa(key) ? SslContextBuilder.forServer(new SingleKeyManager(key, chain))
                        : SslContextBuilder.forServer(key, chain);
                settings.applyTo(b.sslProvider(SslProvider.OPENSSL));
                SslContext ctx = b.build();
                tls = ch -> ctx.newHandler(ch.alloc());
                netty = ctx;
            }
            case BLOCKING -> {
                SslContextBuilder b = SslContextBuilder.forServer(new KeylessKeyManager(chain))
                        .sslProvider(SslProvider.OPENSSL)
                        .option(OpenSslContextOption.ASYNC_PRIVATE_KEY_METHOD, new BlockingKeyMethod(engine));
                settings.applyTo(b);
                SslContext ctx = b.build();
                tls = ch -> ctx.newHandler(ch.alloc());
                netty = ctx;
            }
            default -> throw new IllegalArgumentException(mode.toString());
        }
        this.asyncContext = async;
        this.sslContext = netty;
        this.sites = built;
        group = new MultiThreadIoEventLoopGroup(threads, transport.factory());
        boolean success = false;
        SiteReloader r = null;
        Channel bound = null;
        try {
            bound = new ServerBootstrap().group(group).channel(transport.serverChannel())
                    .option(ChannelOption.SO_BACKLOG, 4096)
                    .childHandler(new TlsServerInitializer(settings.perConnection(tls), settings.http2(),
                            this::scrapeMetrics, this::altSvc, connections))
                    .bind(host, port).sync().channel();
            if (built != null) {
                try {
                    r = new SiteReloader(built);
                } catch (IOException e) {
                    throw new IllegalArgumentException("--site: cannot watch the sites' directories: " + e.getMessage(),
                            e);
                }
                r.start();
            }
            success = true;
        } finally {
            if (!success) {
                if (bound != null) {
                    bound.close();
                }
                group.shutdownGracefully(0, 0, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
                if (built != null) {
                    built.close();
                }
            }
        }
        this.channel = bound;
        this.reloader = r;
    }

    private static boolean isEdDsa(PrivateKey key) {
        String alg = key.getAlgorithm();
        return "Ed25519".equalsIgnoreCase(alg) || "EdDSA".equalsIgnoreCase(alg);
    }

    /**
     * Starts the HTTP/3 listener ({@code --http3}): QUIC over UDP on the TCP listener's port number, on the same event
     * loops, its key operations offloaded through {@link QuicAsyncSslContext} (metrics tagged {@code protocol=quic})
     * under the same inline policy as TCP ({@code --inline-below-us}); from then on HTTP responses carry
     * {@code Alt-Svc: h3=":PORT"}. Offload mode only.
     */
    public void startHttp3() throws InterruptedException, SSLException {
        if (asyncContext == null) {
            throw new IllegalStateException("--http3 serves offloaded QUIC handshakes only; use --mode offload");
        }
        QuicAsyncSslContext ctx = QuicAsyncSslContextBuilder.forServer(engine, chain)
                .applicationProtocols(Http3.supportedApplicationProtocols())
                // The TCP context's metrics: one per-loop gauge set for both protocols (a second Micrometer binding
                // on the same registry would register the loop's gauges again, and Micrometer logs that as a fault).
                .offloadConfig(OffloadConfig.builder().notify(notify).metrics(asyncContext.config().metrics())
                        .build())
                .inlinePolicy(inlinePolicy)
                .build();
        http3 = Http3Listener.bind(group, transport, host, port(), ctx, registry::scrape);
    }

    private String altSvc() {
        Http3Listener h = http3;
        return h == null ? null : "h3=\":" + h.port() + "\"";
    }

    /** The bound port. */
    public int port() {
        return ((InetSocketAddress) channel.localAddress()).getPort();
    }

    /** The metrics in Prometheus text format, as served at {@code GET /metrics} (with the per-site lines). */
    public String scrapeMetrics() {
        Sites s = sites;
        return s == null ? registry.scrape() : registry.scrape() + s.prometheus();
    }

    /** The sites (--site), or null. */
    Sites sites() {
        return sites;
    }

    /** After the event loops: the reloader, then the sites' engines (blocks; never on an event loop). */
    private void closeSites() {
        if (reloader != null) {
            try {
                reloader.close();
            } catch (IOException e) {
                System.Logger.Level w = System.Logger.Level.DEBUG;
                System.getLogger(ExampleServer.class.getName()).log(w, "closing the site watch: " + e);
            }
        }
        if (sites != null) {
            sites.close();
        }
    }

    /** The offload context, or null in inline and blocking modes. */
    public AsyncSslContext asyncContext() {
        return asyncContext;
    }

    /**
     * What the server serves, for its start-up line: TLS versions, the number of cipher suites (TLS 1.3's among them),
     * groups and ALPN, as the TLS context was built.
     */
    public String tlsSummary() {
        List<String> suites = sslContext.cipherSuites();
        long tls13 = suites.stream().filter(TlsSettings::isTls13Suite).count();
        return "TLS " + String.join(",", settings.protocols()) + "; " + suites.size() + " cipher suites (" + tls13
                + " TLS 1.3); groups " + (settings.groups() == null ? "Netty's default (X25519MLKEM768,X25519,P-256,"
                + "P-384,P-521)" : String.join(",", settings.groups())) + "; ALPN " + String.join(",", settings.alpn());
    }

    /** Failed handshakes so far for one reason (also in {@code /metrics}). */
    long failedHandshakes(FailedHandshakes.Reason reason) {
        return failures.count(reason);
    }

    /**
     * Graceful shutdown: stops accepting, lets the handshakes in flight (paused ones too) and the requests in flight
     * finish (HTTP/2 connections get GOAWAY, HTTP/1.1 responses {@code Connection: close}, idle connections are closed)
     * for at most {@code grace} (zero: no bound), closes what is left, then the event loops. {@link #closeNow()} from
     * another thread cuts the wait short. Blocks: call it from a thread that may block, never an event loop.
     *
     * @return what happened, one line for the log
     */
    public String shutdownGracefully(Duration grace) throws InterruptedException {
        long start = System.nanoTime();
        Http3Listener h = http3;
        if (h != null) {
            h.close();
        }
        channel.close().await(5, TimeUnit.SECONDS); // stop accepting
        int atStart = connections.openCount();
        long requestsAtStart = connections.requests() - connections.answered();
        connections.startDrain();
        boolean drained = connections.awaitClosed(grace.toNanos());
        int cut = connections.openCount();
        long unanswered = connections.requests() - connections.answered();
        connections.closeAll();
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
        closeSites();
        failures.flushSummary();
        return "drained in " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start) + " ms: " + atStart
                + " connections and " + requestsAtStart + " requests in flight at the signal; "
                + (drained ? "all finished" : cut + " connections cut at the end of the grace period") + "; "
                + connections.requests() + " requests received, " + connections.answered() + " answered, "
                + unanswered + " unanswered";
    }

    /** Ends a graceful shutdown at once: closes every connection. Any thread. */
    public void closeNow() {
        connections.closeAll();
    }

    /** Stops accepting, closes the channels and the event loops at once; waits up to 10 s. */
    @Override
    public void close() throws InterruptedException {
        Http3Listener h = http3;
        if (h != null) {
            h.close();
        }
        channel.close().await(5, TimeUnit.SECONDS);
        connections.closeAll();
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
        closeSites();
        failures.flushSummary();
    }
}
