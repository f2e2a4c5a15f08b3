package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.SignatureScheme;
import io.netty.handler.ssl.OpenSslAsyncPrivateKeyMethod;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ImmediateEventExecutor;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLHandshakeException;

/**
 * Netty's async private-key method for one {@link AsyncSslContext}: finds the channel of the {@link SSLEngine} that
 * BoringSSL asks for a signature or decryption and hands the operation to that channel's
 * {@link AsyncOffloadHandler}, which runs it as an {@link io.asyncctx.AsyncJob}.
 *
 * <p>Threading: {@link #sign} and {@link #decrypt} are called by tcnative on the channel's event loop (SslHandler runs
 * BoringSSL's tasks there); {@link #bind}/{@link #unbind} on the event loops of the channels; the map is concurrent
 * because several loops share one context.
 */
final class AsyncPrivateKeyMethodAdapter implements OpenSslAsyncPrivateKeyMethod {

    private final AsyncEngine engine;
    private final OffloadConfig config;
    private final ConcurrentHashMap<SSLEngine, AsyncOffloadHandler> bindings = new ConcurrentHashMap<>();
    private final InlinePolicy.Decision inline;
    private final LongAdder operations = new LongAdder();
    private final LongAdder inlineOperations = new LongAdder();

    AsyncPrivateKeyMethodAdapter(AsyncEngine engine, OffloadConfig config, InlinePolicy.Decision inline) {
        this.engine = engine;
        this.config = config;
        this.inline = inline;
    }

    InlinePolicy.Decision inlineDecision() {
        return inline;
    }

    long inlineOperations() {
        return inlineOperations.sum();
    }

    AsyncEngine engine() {
        return engine;
    }

    OffloadConfig config() {
        return config;
    }

    void bind(SSLEngine sslEngine, AsyncOffloadHandler handler) {
        bindings.put(sslEngine, handler);
    }

    void unbind(SSLEngine sslEngine) {
        bindings.remove(sslEngine);
    }

    int boundChannels() {
        return bindings.size();
    }

    long operations() {
        return operations.sum();
    }

    @Override
    public Future<byte[]> sign(SSLEngine sslEngine, int signatureAlgorithm, byte[] input) {
        AsyncOffloadHandler handler = bindings.get(sslEngine);
        if (handler == null) {
            return unbound();
        }
        SignatureScheme scheme;
        try {
            scheme = SignatureScheme.ofCodePoint(signatureAlgorithm);
        } catch (IllegalArgumentException e) {
            return handler.failed(new SSLHandshakeException(e.getMessage()));
        }
        KeyOperation op = KeyOperation.sign(scheme, input);
        if (inline.isInline(scheme)) {
            inlineOperations.increment();
            return handler.performInline(inline.signer(), op);
        }
        operations.increment();
        return handler.submit(op);
    }

    @Override
    public Future<byte[]> decrypt(SSLEngine sslEngine, byte[] input) {
        AsyncOffloadHandler handler = bindings.get(sslEngine);
        if (handler == null) {
            return unbound();
        }
        operations.increment();
        return handler.submit(KeyOperation.decrypt(input));
    }

    private static Future<byte[]> unbound() {
        return ImmediateEventExecutor.INSTANCE.newFailedFuture(new SSLHandshakeException("this SSLEngine has no "
                + "AsyncOffloadHandler: either its channel's handler was removed or closed during the handshake, or "
                + "the SslHandler was made with sslContext().newHandler(...) instead of "
                + "AsyncSslContext.newHandler(channel)"));
    }
}
