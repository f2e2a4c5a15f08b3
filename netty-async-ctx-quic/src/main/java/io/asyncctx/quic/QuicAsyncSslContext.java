package io.asyncctx.quic;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.SignatureScheme;
import io.asyncctx.netty.OffloadConfig;
import io.netty.channel.Channel;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicCodecBuilder;
import io.netty.handler.codec.quic.QuicServerCodecBuilder;
import io.netty.handler.codec.quic.QuicSslContext;
import io.netty.handler.codec.quic.QuicSslEngine;

import java.util.Objects;
import java.util.Set;
import java.util.concurrent.RejectedExecutionException;

/**
 * Threading: thread-safe and shared by all QUIC connections of a codec (or several codecs); {@link #configure} is
 * called once per codec builder on the builder's thread. The engine provider it installs runs on each QUIC channel's
 * event loop.
 *
 * <p>A QUIC TLS context whose private-key operations are offloaded to an {@link AsyncEngine}: made by
 * {@link QuicAsyncSslContextBuilder}, used by handing it the QUIC codec builder, one line where
 * {@code codecBuilder.sslContext(...)} would be:
 * <pre>{@code QuicAsyncSslContext ctx = QuicAsyncSslContextBuilder.forServer(engine, chain).build();
 * ChannelHandler codec = ctx.configure(Http3.newQuicServerCodecBuilder()).handler(...).build();}</pre>
 * Each QUIC connection gets its own {@link io.asyncctx.AsyncWaitCtx} (through
 * {@link io.asyncctx.netty.AsyncOffloadConnection}) on the QUIC channel's event loop, which is the event loop of the UDP
 * channel that carries it: on epoll and io_uring the wait fds are registered there, on NIO the callback path is used
 * ({@link OffloadConfig.Notify#AUTO}). Signature schemes that the builder's {@link io.asyncctx.netty.InlinePolicy}
 * measured as cheap are signed inline on that loop instead. Metrics are tagged {@code protocol=quic}.
 */
public final class QuicAsyncSslContext {

    /** The {@code protocol} tag of QUIC handshakes' metrics. */
    public static final String PROTOCOL = "quic";

    private final QuicSslContext sslContext;
    private final AsyncEngine engine;
    private final OffloadConfig config;
    private final QuicKeyMethod method;
    private final RedriveExecutor executor;

    QuicAsyncSslContext(QuicSslContext sslContext, AsyncEngine engine, OffloadConfig config, QuicKeyMethod method,
                        RedriveExecutor executor) {
        this.sslContext = sslContext;
        this.engine = engine;
        this.config = config;
        this.method = method;
        this.executor = executor;
    }

    /**
     * Sets {@code codecBuilder}'s SSL engine provider and SSL task executor to this context's (do not replace either
     * afterwards: the engine provider binds each connection, the executor resumes paused handshakes).
     *
     * @throws IllegalArgumentException when a server context is given a client codec builder or the reverse
     */
    public <B extends QuicCodecBuilder<B>> B configure(B codecBuilder) {
        Objects.requireNonNull(codecBuilder, "codecBuilder");
        boolean serverBuilder = codecBuilder instanceof QuicServerCodecBuilder;
        if (serverBuilder != sslContext.isServer()) {
            throw new IllegalArgumentException("a " + (sslContext.isServer() ? "server" : "client") + " context "
                    + "cannot configure a " + (serverBuilder ? "server" : "client") + " codec builder; build the context "
                    + "with QuicAsyncSslContextBuilder." + (serverBuilder ? "forServer" : "forClient"));
        }
        return codecBuilder.sslEngineProvider(this::newEngine).sslTaskExecutor(executor);
    }

    /**
     * Makes the engine of one QUIC connection and binds the connection's offload state to it; unbinds it when the
     * channel closes. Runs on the loop of the channel's parent (the UDP channel), which is the loop the QUIC channel is
     * (or will be) registered on.
     *
     * <p>The codec may abandon the channel right after this returns: Netty 4.2's QUIC server codec calls
     * {@code channel.unsafe().closeForcibly()} when {@code quiche_conn_new_with_tls} fails or the engine is not a
     * server engine of its kind (and the channel's connect failure does so on the client), before or instead of
     * registering it; {@code closeForcibly()} closes without completing the close future. So a task queued here, which
     * runs after the codec has either registered the channel or given it up, unbinds a channel that is no longer open.
     */
    QuicSslEngine newEngine(QuicChannel channel) {
        QuicSslEngine sslEngine = sslContext.newEngine(channel.alloc());
        QuicOffloadBinding binding = new QuicOffloadBinding(this, channel);
        method.bind(sslEngine, binding);
        Runnable release = () -> {
            method.unbind(sslEngine);
            binding.close();
        };
        channel.closeFuture().addListener(f -> release.run());
        Channel parent = channel.parent();
        if (parent != null) {
            try {
                parent.eventLoop().execute(() -> {
                    if (!channel.isOpen()) {
                        release.run(); // abandoned by the codec (closeForcibly): the close future never completes
                    }
                });
            } catch (RejectedExecutionException e) {
                release.run(); // the loop is shutting down: no handshake of this channel will run
            }
        }
        return sslEngine;
    }

    /** The key method installed in the Netty context. */
    QuicKeyMethod keyMethod() {
        return method;
    }

    /** The codec's SSL task executor, which also re-runs a paused handshake's task batch. */
    RedriveExecutor redriveExecutor() {
        return executor;
    }

    /** The underlying Netty QUIC context (keyless). Use {@link #configure} for codecs. */
    public QuicSslContext sslContext() {
        return sslContext;
    }

    /** The engine that performs the private-key operations. */
    public AsyncEngine engine() {
        return engine;
    }

    /** The offload settings, with metrics tagged {@code protocol=quic}. */
    public OffloadConfig config() {
        return config;
    }

    /** True for a server context. */
    public boolean isServer() {
        return sslContext.isServer();
    }

    /**
     * Private-key operations of this context that ran as jobs so far (those signed inline are counted by
     * {@link #inlineOperations()}). Any thread.
     */
    public long offloadedOperations() {
        return method.operations();
    }

    /**
     * Signatures of this context signed inline on the QUIC channels' event loops under its
     * {@link io.asyncctx.netty.InlinePolicy} so far (also counted as {@code asyncctx.operations.inline} with
     * {@code protocol=quic}). Any thread.
     */
    public long inlineOperations() {
        return method.inlineOperations();
    }

    /** The signature schemes that run inline, measured once at build time under the inline policy. Any thread. */
    public Set<SignatureScheme> inlineSchemes() {
        return method.inlineSchemes();
    }

    /**
     * Private-key operations of {@code channel}'s handshake that ran as jobs: 1 after a full handshake signed by the
     * engine, 0 for a resumed session or a channel of another context. Any thread; reliable once the handshake is
     * done.
     */
    public long offloadedOperations(QuicChannel channel) {
        QuicOffloadBinding binding = method.binding(Objects.requireNonNull(channel, "channel").sslEngine());
        return binding == null ? 0 : binding.operations();
    }

    /**
     * Private-key operations of {@code channel}'s handshake signed inline on its loop: 1 after a full handshake whose
     * scheme the inline policy chose, else 0. Any thread; reliable once the handshake is done.
     */
    public long inlineOperations(QuicChannel channel) {
        QuicOffloadBinding binding = method.binding(Objects.requireNonNull(channel, "channel").sslEngine());
        return binding == null ? 0 : binding.inlineOperations();
    }

    /** QUIC connections bound to this context now (open channels made through {@link #configure}). Any thread. */
    public int boundChannels() {
        return method.boundChannels();
    }
}
