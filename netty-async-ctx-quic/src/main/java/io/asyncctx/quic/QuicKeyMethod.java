package io.asyncctx.quic;

import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.SignatureScheme;
import io.asyncctx.netty.InlinePolicy;
import io.netty.handler.codec.quic.BoringSSLAsyncPrivateKeyMethod;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ImmediateEventExecutor;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLHandshakeException;

/**
 * The QUIC context's BoringSSL key method: finds the QUIC connection of the {@link SSLEngine} that BoringSSL asks for
 * a signature (the engine the context's engine provider made for that {@link io.netty.handler.codec.quic.QuicChannel})
 * and runs the operation as a job of that connection, or, for a signature scheme that the context's
 * {@link InlinePolicy} measured as cheap, signs it right there on the channel's event loop.
 *
 * <p>Threading: {@link #sign} and {@link #decrypt} are called by Netty's QUIC channel inside a BoringSSL task, which
 * the context's {@link RedriveExecutor} runs on the channel's event loop; the returned future is one of that loop, and
 * Netty's listener on it (which hands the result to BoringSSL) runs there. {@link #bind}/{@link #unbind} run on the
 * event loops of the channels; the map is concurrent because several loops share one context.
 */
final class QuicKeyMethod implements BoringSSLAsyncPrivateKeyMethod {

    private final RedriveExecutor executor;
    private final Map<SSLEngine, QuicOffloadBinding> bindings = new ConcurrentHashMap<>();
    private final InlinePolicy.Decision inline;
    private final LongAdder operations = new LongAdder();
    private final LongAdder inlineOperations = new LongAdder();

    QuicKeyMethod(RedriveExecutor executor, InlinePolicy.Decision inline) {
        this.executor = executor;
        this.inline = inline;
    }

    InlinePolicy.Decision inlineDecision() {
        return inline;
    }

    long inlineOperations() {
        return inlineOperations.sum();
    }

    void bind(SSLEngine engine, QuicOffloadBinding binding) {
        bindings.put(engine, binding);
    }

    void unbind(SSLEngine engine) {
        bindings.remove(engine);
    }

    QuicOffloadBinding binding(SSLEngine engine) {
        return bindings.get(engine);
    }

    int boundChannels() {
        return bindings.size();
    }

    long operations() {
        return operations.sum();
    }

    @Override
    public Future<byte[]> sign(SSLEngine engine, int signatureAlgorithm, byte[] input) {
        QuicOffloadBinding binding = bindings.get(engine);
        if (binding == null) {
            return unbound();
        }
        SignatureScheme scheme;
        try {
            scheme = SignatureScheme.ofCodePoint(signatureAlgorithm);
        } catch (IllegalArgumentException e) {
            return binding.channel().eventLoop().newFailedFuture(new SSLHandshakeException(e.getMessage()));
        }
        KeyOperation op = KeyOperation.sign(scheme, input);
        if (inline.isInline(scheme)) {
            inlineOperations.increment();
            return binding.performInline(inline.signer(), op);
        }
        operations.increment();
        return binding.submit(op, executor.current());
    }

    @Override
    public Future<byte[]> decrypt(SSLEngine engine, byte[] input) {
        QuicOffloadBinding binding = bindings.get(engine);
        if (binding == null) {
            return unbound();
        }
        operations.increment();
        return binding.submit(KeyOperation.decrypt(input), executor.current());
    }

    private static Future<byte[]> unbound() {
        return ImmediateEventExecutor.INSTANCE.newFailedFuture(new SSLHandshakeException("this QUIC SSLEngine was not "
                + "made by a QuicAsyncSslContext's engine provider (or its channel closed): configure the codec with "
                + "QuicAsyncSslContext.configure(codecBuilder) instead of codecBuilder.sslContext(...)"));
    }
}
