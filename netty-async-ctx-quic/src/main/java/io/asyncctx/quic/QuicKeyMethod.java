package io.asyncctx.quic;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.netty.AbstractAsyncKeyMethod;
import io.asyncctx.netty.InlinePolicy;
import io.netty.handler.codec.quic.BoringSSLAsyncPrivateKeyMethod;
import io.netty.util.concurrent.Future;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLHandshakeException;

/**
 * The QUIC context's BoringSSL key method: finds the QUIC connection of the {@link SSLEngine} that BoringSSL asks for
 * a signature (the engine the context's engine provider made for that {@link io.netty.handler.codec.quic.QuicChannel})
 * and runs the operation as a job of that connection, or, for a signature scheme that the context's
 * {@link InlinePolicy} measured as cheap, signs it right there on the channel's event loop. The lookup, the inline
 * choice and the counters are TCP's ({@link AbstractAsyncKeyMethod}); what differs is that an engine without a binding
 * fails (TCP offloads it detached) and that a paused operation re-runs the codec's task batch.
 *
 * <p>Threading: {@link #sign} and {@link #decrypt} are called by Netty's QUIC channel inside a BoringSSL task, which
 * the context's {@link RedriveExecutor} runs on the channel's event loop; the returned future is one of that loop, and
 * Netty's listener on it (which hands the result to BoringSSL) runs there. {@link #bind}/{@link #unbind} run on the
 * event loops of the channels; the map is concurrent because several loops share one context.
 */
final class QuicKeyMethod extends AbstractAsyncKeyMethod<QuicOffloadBinding>
        implements BoringSSLAsyncPrivateKeyMethod {

    private final RedriveExecutor executor;

    /** Measures {@code policy} for {@code engine} now: building thread. */
    QuicKeyMethod(RedriveExecutor executor, InlinePolicy policy, AsyncEngine engine) {
        super(policy, engine);
        this.executor = executor;
    }

    void bind(SSLEngine engine, QuicOffloadBinding binding) {
        bindings().put(engine, binding);
    }

    void unbind(SSLEngine engine) {
        bindings().remove(engine);
    }

    QuicOffloadBinding binding(SSLEngine engine) {
        return bindings().get(engine);
    }

    @Override
    protected SSLHandshakeException unboundFailure() {
        return new SSLHandshakeException("this QUIC SSLEngine was not made by a QuicAsyncSslContext's engine provider "
                + "(or its channel closed): configure the codec with QuicAsyncSslContext.configure(codecBuilder) "
                + "instead of codecBuilder.sslContext(...)");
    }

    @Override
    protected Future<byte[]> unsupportedScheme(QuicOffloadBinding binding, int signatureAlgorithm,
                                               SSLHandshakeException failure) {
        return binding.channel().eventLoop().newFailedFuture(failure);
    }

    @Override
    protected Future<byte[]> signInline(QuicOffloadBinding binding, KeySigner signer, KeyOperation op) {
        return binding.performInline(signer, op);
    }

    @Override
    protected Future<byte[]> offload(SSLEngine sslEngine, QuicOffloadBinding binding, KeyOperation op) {
        return binding.submit(op, executor.current());
    }
}
