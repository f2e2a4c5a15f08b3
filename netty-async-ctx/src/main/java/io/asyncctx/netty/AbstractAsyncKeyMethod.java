package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.engine.SignatureScheme;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ImmediateEventExecutor;

import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLHandshakeException;

/**
 * Threading: {@link #sign} and {@link #decrypt} are called by netty-tcnative (TCP) or the QUIC codec on the thread
 * that runs BoringSSL's tasks, which is the connection's event loop with the library's contexts; the hooks run on that
 * thread, inside those calls. {@link #bindings()} is a concurrent map, written on the event loops of the connections
 * (several loops share one key method); the counters may be read from any thread.
 *
 * <p>What the library's two BoringSSL key methods share: {@code AsyncPrivateKeyMethodAdapter} (TCP, Netty's
 * {@code OpenSslAsyncPrivateKeyMethod}) and {@code io.asyncctx.quic.QuicKeyMethod} (QUIC, Netty's
 * {@code BoringSSLAsyncPrivateKeyMethod}), whose {@code sign} and {@code decrypt} have the same signatures, so a
 * subclass implements Netty's interface with the methods inherited from here. Both do the same thing: find the
 * connection's binding {@code B} of the {@link SSLEngine} BoringSSL asks for, turn the request into a
 * {@link KeyOperation}, sign inline the schemes the context's {@link InlinePolicy} measured as cheap, and offload the
 * rest, counting both. The subclass says what happens to a request without a binding, to an unsupported scheme, to an
 * inline signature and to an offloaded operation.
 *
 * <p>Public only because the QUIC module extends it; it is not meant to be extended outside this library.
 *
 * @param <B> a connection's binding (its offload state)
 */
public abstract class AbstractAsyncKeyMethod<B> {

    private final ConcurrentHashMap<SSLEngine, B> bindings = new ConcurrentHashMap<>();
    private final InlinePolicy.Decision inline;
    private final LongAdder operations = new LongAdder();
    private final LongAdder inlineOperations = new LongAdder();

    /**
     * A key method that signs inline what {@code policy} measures as cheap for {@code engine}: measures it now, so
     * call on the building thread (never an event loop).
     */
    protected AbstractAsyncKeyMethod(InlinePolicy policy, AsyncEngine engine) {
        this(Objects.requireNonNull(policy, "policy").resolve(Objects.requireNonNull(engine, "engine")));
    }

    AbstractAsyncKeyMethod(InlinePolicy.Decision inline) {
        this.inline = inline;
    }

    /**
     * Signs {@code input} with the scheme {@code signatureAlgorithm} (a TLS code point) for the connection of
     * {@code sslEngine}: inline when the inline policy chose the scheme and {@link #mayRunInline} agrees, else
     * offloaded. Event loop (the thread that runs BoringSSL's tasks).
     */
    public final Future<byte[]> sign(SSLEngine sslEngine, int signatureAlgorithm, byte[] input) {
        B binding = bindings.get(sslEngine);
        SSLHandshakeException unbound = binding == null ? unboundFailure() : null;
        if (unbound != null) {
            return ImmediateEventExecutor.INSTANCE.newFailedFuture(unbound);
        }
        SignatureScheme scheme;
        try {
            scheme = SignatureScheme.ofCodePoint(signatureAlgorithm);
        } catch (IllegalArgumentException e) {
            return unsupportedScheme(binding, signatureAlgorithm, new SSLHandshakeException(e.getMessage()));
        }
        KeyOperation op = KeyOperation.sign(scheme, input);
        if (inline.isInline(scheme) && mayRunInline(op)) {
            inlineOperations.increment();
            return signInline(binding, inline.signer(), op);
        }
        operations.increment();
        return offload(sslEngine, binding, op);
    }

    /** Decrypts {@code input} (TLS 1.2 static RSA) for the connection of {@code sslEngine}: always offloaded. */
    public final Future<byte[]> decrypt(SSLEngine sslEngine, byte[] input) {
        B binding = bindings.get(sslEngine);
        SSLHandshakeException unbound = binding == null ? unboundFailure() : null;
        if (unbound != null) {
            return ImmediateEventExecutor.INSTANCE.newFailedFuture(unbound);
        }
        operations.increment();
        return offload(sslEngine, binding, KeyOperation.decrypt(input));
    }

    /**
     * The failure of a request for an {@link SSLEngine} without a binding, or null when the hooks handle such requests
     * themselves (they then get a null binding). The default: null.
     */
    protected SSLHandshakeException unboundFailure() {
        return null;
    }

    /** True when {@code op}, whose scheme the inline policy chose, may be signed inline (default: true). */
    protected boolean mayRunInline(KeyOperation op) {
        return true;
    }

    /**
     * The result of a signature whose code point is not a scheme this library knows: a failed future carrying
     * {@code failure}. {@code binding} is null for an unbound engine (when {@link #unboundFailure()} is null).
     */
    protected abstract Future<byte[]> unsupportedScheme(B binding, int signatureAlgorithm,
                                                        SSLHandshakeException failure);

    /** Signs {@code op} here with {@code signer}; {@code binding} may be null as for {@link #unsupportedScheme}. */
    protected abstract Future<byte[]> signInline(B binding, KeySigner signer, KeyOperation op);

    /** Hands {@code op} to the engine; {@code binding} may be null as for {@link #unsupportedScheme}. */
    protected abstract Future<byte[]> offload(SSLEngine sslEngine, B binding, KeyOperation op);

    /** The bindings of the connections' {@link SSLEngine}s (concurrent: several event loops share a key method). */
    protected final Map<SSLEngine, B> bindings() {
        return bindings;
    }

    /** Connections bound now. Any thread. */
    public final int boundChannels() {
        return bindings.size();
    }

    /** Operations offloaded so far (everything not signed inline). Any thread. */
    public final long operations() {
        return operations.sum();
    }

    /** Signatures signed inline so far. Any thread. */
    public final long inlineOperations() {
        return inlineOperations.sum();
    }

    /** The signature schemes that run inline, measured once at build time (unmodifiable). Any thread. */
    public final Set<SignatureScheme> inlineSchemes() {
        return inline.inline();
    }
}
