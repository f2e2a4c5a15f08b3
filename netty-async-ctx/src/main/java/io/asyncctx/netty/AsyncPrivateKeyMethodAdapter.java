package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.KeySigner;
import io.netty.handler.ssl.OpenSslAsyncPrivateKeyMethod;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.FutureListener;
import io.netty.util.concurrent.ImmediateEventExecutor;

import java.security.GeneralSecurityException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLHandshakeException;

/**
 * Netty's async private-key method for one {@link AsyncSslContext}: finds the channel of the {@link SSLEngine} that
 * BoringSSL asks for a signature or decryption and hands the operation to that channel's
 * {@link AsyncOffloadHandler}, which runs it as an {@link io.asyncctx.AsyncJob}. An engine that no channel has bound
 * (made by {@code newEngine} and wrapped in a handler of the caller's own) is offloaded through
 * {@link DetachedOffload}. It also counts the operations in flight and says once per reason, in the log, why
 * handshakes of its context cannot offload.
 *
 * <p>Threading: {@link #sign} and {@link #decrypt} are called by tcnative on the thread that runs BoringSSL's tasks
 * (the channel's event loop with the default handler executor); {@link #bind}/{@link #unbind} on the event loops of
 * the channels; the maps and counters are concurrent because several loops share one context.
 */
final class AsyncPrivateKeyMethodAdapter extends AbstractAsyncKeyMethod<AsyncOffloadHandler>
        implements OpenSslAsyncPrivateKeyMethod {

    private static final System.Logger LOG = System.getLogger(AsyncSslContext.class.getName());

    private final AsyncEngine engine;
    /** The engine of a second key of another type (RSA and ECDSA side by side), or null. */
    private final AsyncEngine second;
    private final OffloadConfig config;
    private final OffloadConfig detachedConfig;
    private final Set<String> noted = ConcurrentHashMap.newKeySet();
    private final LongAdder detachedOperations = new LongAdder();
    private final LongAdder inFlight = new LongAdder();
    private final LongAdder failures = new LongAdder();
    private final LongAdder operationNanos = new LongAdder();
    private final Runnable operationEnded = this::operationEnded;
    private final FutureListener<byte[]> onFailure = f -> {
        if (!f.isSuccess()) {
            failures.increment();
        }
    };
    /** Run after every operation that ends while set: the retirement check of a replaced context. */
    private volatile Runnable afterOperation;

    AsyncPrivateKeyMethodAdapter(AsyncEngine engine, OffloadConfig config, InlinePolicy.Decision inline) {
        this(engine, null, config, inline);
    }

    AsyncPrivateKeyMethodAdapter(AsyncEngine engine, AsyncEngine second, OffloadConfig config,
                                 InlinePolicy.Decision inline) {
        super(inline);
        this.engine = engine;
        this.second = second;
        this.config = config;
        // The detached loop is NIO (callback notification) and has no handshake budget of its own to keep.
        this.detachedConfig = config.toBuilder().notify(OffloadConfig.Notify.CALLBACK).handshakeStepsPerLoopTurn(0)
                .build();
    }

    long detachedOperations() {
        return detachedOperations.sum();
    }

    long inFlight() {
        return inFlight.sum();
    }

    long failures() {
        return failures.sum();
    }

    /** Nanoseconds from hand-off to end, summed over the bound path's operations that ended. */
    long operationNanos() {
        return operationNanos.sum();
    }

    void afterOperation(Runnable check) {
        this.afterOperation = check;
    }

    private void operationEnded() {
        inFlight.decrement();
        Runnable check = afterOperation;
        if (check != null) {
            check.run();
        }
    }

    AsyncEngine engine() {
        return engine;
    }

    /** The second key's engine, or null. */
    AsyncEngine secondEngine() {
        return second;
    }

    /**
     * The engine whose key {@code op} needs: with a second key, a signature goes to the engine whose key type the
     * scheme names (BoringSSL chose the certificate, and so the key, before it asks) and a decryption (static RSA) to
     * the RSA key.
     */
    AsyncEngine engineFor(KeyOperation op) {
        if (second == null) {
            return engine;
        }
        String wanted = op.signatureScheme() == null ? "RSA" : op.signatureScheme().keyAlgorithm();
        return KeylessKeyManager.keyType(second.publicKey()).equals(wanted) ? second : engine;
    }

    OffloadConfig config() {
        return config;
    }

    void bind(SSLEngine sslEngine, AsyncOffloadHandler handler) {
        bindings().put(sslEngine, handler);
    }

    void unbind(SSLEngine sslEngine) {
        bindings().remove(sslEngine);
    }

    /**
     * Logs {@code message} once for this context and {@code reason} (the first time only: a reason that holds for
     * every connection must not write a line per connection). Any thread.
     */
    void noteOnce(String reason, System.Logger.Level level, String message) {
        if (noted.add(reason)) {
            LOG.log(level, "AsyncSslContext (engine '" + engine.name() + "'): " + message
                    + " [said once per context]");
        }
    }

    /** With a second key, only the first key's signatures run inline (the inline signer holds that key). */
    @Override
    protected boolean mayRunInline(KeyOperation op) {
        return engineFor(op) == engine;
    }

    @Override
    protected Future<byte[]> unsupportedScheme(AsyncOffloadHandler handler, int signatureAlgorithm,
                                               SSLHandshakeException failure) {
        noteOnce("scheme:" + signatureAlgorithm, System.Logger.Level.WARNING, "a handshake asked for "
                + failure.getMessage() + "; it fails (restrict the signature algorithms the context offers)");
        failures.increment();
        return handler == null ? ImmediateEventExecutor.INSTANCE.newFailedFuture(failure) : handler.failed(failure);
    }

    @Override
    protected Future<byte[]> signInline(AsyncOffloadHandler handler, KeySigner signer, KeyOperation op) {
        return handler == null ? performInline(signer, op) : handler.performInline(signer, op);
    }

    /** A bound engine: through its channel's handler; an unbound one (no handler): detached. */
    @Override
    protected Future<byte[]> offload(SSLEngine sslEngine, AsyncOffloadHandler handler, KeyOperation op) {
        inFlight.increment();
        if (handler == null) {
            detachedOperations.increment();
            Future<byte[]> f = DetachedOffload.run(engineFor(op), detachedConfig, op, sslEngine, operationEnded);
            f.addListener(onFailure);
            return f;
        }
        long start = System.nanoTime();
        Future<byte[]> f = handler.submit(op);
        f.addListener(done -> {
            operationNanos.add(System.nanoTime() - start);
            if (!done.isSuccess()) {
                failures.increment();
            }
            operationEnded();
        });
        return f;
    }

    private static Future<byte[]> performInline(KeySigner signer, KeyOperation op) {
        try {
            return ImmediateEventExecutor.INSTANCE.newSucceededFuture(signer.perform(op));
        } catch (GeneralSecurityException | RuntimeException e) {
            return ImmediateEventExecutor.INSTANCE.newFailedFuture(e);
        }
    }
}
