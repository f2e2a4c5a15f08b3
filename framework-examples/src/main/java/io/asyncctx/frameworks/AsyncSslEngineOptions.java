package io.asyncctx.frameworks;

import io.netty.handler.ssl.SslContext;
import io.vertx.core.net.SSLEngineOptions;
import io.vertx.core.spi.tls.SslContextFactory;

import java.util.Objects;

/**
 * Vert.x's supported hook for a TLS context of one's own: an {@link SSLEngineOptions} whose
 * {@link #sslContextFactory()} hands Vert.x a ready {@link SslContext} (here the library's {@code AsyncSslContext})
 * instead of building one from key files. Vert.x wraps it in its own delegating context and calls its
 * {@code newHandler}, so the handshakes offload on the bound path. What Vert.x asks the factory to configure (key
 * manager, trust, ALPN list, cipher suites) is already in the context: configure it on the library's builder.
 *
 * <p>Threading: immutable; Vert.x may call {@link #sslContextFactory()} and the factory from any thread.
 */
// readme:vertx-options
public final class AsyncSslEngineOptions extends SSLEngineOptions {

    private final SslContext context;

    /** Options that make Vert.x use {@code context} for every TLS connection of the server they are set on. */
    public AsyncSslEngineOptions(SslContext context) {
        this.context = Objects.requireNonNull(context, "context");
    }

    @Override
    public AsyncSslEngineOptions copy() {
        AsyncSslEngineOptions copy = new AsyncSslEngineOptions(context);
        copy.setUseWorkerThread(getUseWorkerThread());
        return copy;
    }

    @Override
    public SslContextFactory sslContextFactory() {
        return () -> context;
    }
}
// end
