package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.netty.channel.Channel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;

import java.util.Objects;

/**
 * A TLS context whose private-key operations are offloaded to an {@link AsyncEngine}: made by
 * {@link AsyncSslContextBuilder}, used through {@link #newHandler(Channel)}, one line in a channel initializer:
 * <pre>{@code ch.pipeline().addLast(asyncSslContext.newHandler(ch));}</pre>
 *
 * <p>Threading: thread-safe and shared by all channels of a server; {@link #newHandler} is called on the channel's
 * event loop (in {@code initChannel}).
 */
public final class AsyncSslContext {

    private final SslContext sslContext;
    private final AsyncEngine engine;
    private final OffloadConfig config;
    private final AsyncPrivateKeyMethodAdapter method;
    private final boolean server;

    AsyncSslContext(SslContext sslContext, AsyncEngine engine, OffloadConfig config,
                    AsyncPrivateKeyMethodAdapter method, boolean server) {
        this.sslContext = sslContext;
        this.engine = engine;
        this.config = config;
        this.method = method;
        this.server = server;
    }

    /**
     * A handler for a server channel (or a client channel without peer host): add it to the pipeline; it puts the
     * {@link SslHandler} right after itself and binds the connection's offload state to it.
     */
    public AsyncOffloadHandler newHandler(Channel channel) {
        Objects.requireNonNull(channel, "channel");
        SslHandler ssl = method == null ? sslContext.newHandler(channel.alloc(), engine.taskExecutor())
                : sslContext.newHandler(channel.alloc());
        return new AsyncOffloadHandler(this, ssl);
    }

    /** A handler for a client channel that connects to {@code peerHost:peerPort} (SNI and host name checks). */
    public AsyncOffloadHandler newHandler(Channel channel, String peerHost, int peerPort) {
        Objects.requireNonNull(channel, "channel");
        Objects.requireNonNull(peerHost, "peerHost");
        SslHandler ssl = method == null
                ? sslContext.newHandler(channel.alloc(), peerHost, peerPort, engine.taskExecutor())
                : sslContext.newHandler(channel.alloc(), peerHost, peerPort);
        return new AsyncOffloadHandler(this, ssl);
    }

    /** The underlying Netty context (keyless on the BoringSSL path). Use {@link #newHandler} for channels. */
    public SslContext sslContext() {
        return sslContext;
    }

    /** The engine that performs the private-key operations. */
    public AsyncEngine engine() {
        return engine;
    }

    /** The offload settings. */
    public OffloadConfig config() {
        return config;
    }

    /** True for a server context. */
    public boolean isServer() {
        return server;
    }

    /** True when handshakes pause and resume through jobs (BoringSSL); false on the JDK provider path. */
    public boolean isAsync() {
        return method != null;
    }

    /** Private-key operations handed to the engine through this context so far. Any thread. */
    public long offloadedOperations() {
        return method == null ? 0 : method.operations();
    }

    /** Operations run inline on the event loop under the context's {@link InlinePolicy} so far. Any thread. */
    public long inlineOperations() {
        return method == null ? 0 : method.inlineOperations();
    }

    /** The signature schemes that run inline (measured at build time under the {@link InlinePolicy}). */
    public java.util.Set<io.asyncctx.engine.SignatureScheme> inlineSchemes() {
        return method == null ? java.util.Set.of() : method.inlineDecision().inline();
    }

    /** Channels bound to this context now (open channels whose handlers are in a pipeline). Any thread. */
    public int boundChannels() {
        return method == null ? 0 : method.boundChannels();
    }

    AsyncPrivateKeyMethodAdapter method() {
        return method;
    }
}
