package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.SignatureScheme;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.handler.ssl.ApplicationProtocolNegotiator;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.ImmediateExecutor;

import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLSessionContext;

/**
 * Threading: thread-safe and shared by all channels of a server; {@code newHandler} and {@code newEngine} may be
 * called from any thread (frameworks call them on the channel's event loop). The counters may be read from any thread.
 *
 * <p>A Netty {@link SslContext} whose private-key operations are offloaded to an {@link AsyncEngine}: made by
 * {@link AsyncSslContextBuilder}, used wherever Netty takes an {@code SslContext}. In a pipeline of your own it is the
 * usual line:
 * <pre>{@code ch.pipeline().addLast(asyncSslContext.newHandler(ch.alloc()));}</pre>
 * and a framework that builds its own pipeline (Reactor Netty's {@code HttpServer.secure}, gRPC-Java's
 * {@code NettyServerBuilder.sslContext}, Vert.x, Netty's {@code SniHandler}) is handed the context itself.
 *
 * <p><b>Two paths.</b> Every {@code newHandler(...)} returns an {@link SslHandler} that binds the connection's offload
 * state to its channel when it is added to a pipeline: its key operations run as {@link io.asyncctx.AsyncJob}s resumed
 * on the channel's event loop through wait fds or callbacks, reads are held while an operation waits, and the
 * deadline, cancel-on-close, inline policy, metrics and JFR events apply (the handler puts a small companion handler
 * right before itself for the read and flush hold; see {@link AsyncOffloadHandler}). An {@link SSLEngine} made with
 * {@link #newEngine} and wrapped in an {@code SslHandler} of the caller's own (gRPC-Java does this) has no channel to
 * bind: its key operations are still offloaded, to the same engine with the same deadline, retries and fallback, and
 * the handshake resumes through Netty's delegated-task path ({@code SslHandler} moves the resume back to the
 * channel's loop); what this path lacks is the per-channel read hold while the operation waits. Operations that the
 * {@link InlinePolicy} keeps inline run inline on both paths. {@link #detachedOperations()} counts the second path.
 */
public final class AsyncSslContext extends SslContext {

    private final SslContext keyless;
    private final AsyncEngine engine;
    private final OffloadConfig config;
    private final AsyncPrivateKeyMethodAdapter method;
    /** Handlers made by this context whose handshake has not ended yet (success or failure). */
    private final AtomicLong handshakes = new AtomicLong();
    private final AtomicBoolean idleFired = new AtomicBoolean();
    /** Set (after {@link #successor}) when the context is replaced; see {@link #retire}. */
    private volatile boolean retired;
    private volatile AsyncSslContext successor;
    private volatile Runnable onRetiredIdle;

    AsyncSslContext(SslContext keyless, AsyncEngine engine, OffloadConfig config,
                    AsyncPrivateKeyMethodAdapter method) {
        this.keyless = keyless;
        this.engine = engine;
        this.config = config;
        this.method = method;
    }

    // ---- SslContext ----

    @Override
    public boolean isClient() {
        return keyless.isClient();
    }

    @Override
    public List<String> cipherSuites() {
        return keyless.cipherSuites();
    }

    @Override
    public long sessionCacheSize() {
        return keyless.sessionCacheSize();
    }

    @Override
    public long sessionTimeout() {
        return keyless.sessionTimeout();
    }

    @Override
    public ApplicationProtocolNegotiator applicationProtocolNegotiator() {
        return keyless.applicationProtocolNegotiator();
    }

    @Override
    public SSLSessionContext sessionContext() {
        return keyless.sessionContext();
    }

    /**
     * A new engine of this context. Wrapped in this context's own handler ({@code newHandler}) it is bound to its
     * channel; wrapped in an {@code SslHandler} of the caller's own its key operations are offloaded unbound (see the
     * class javadoc). Release it as any OpenSSL engine (an {@code SslHandler} in a pipeline does).
     */
    @Override
    public SSLEngine newEngine(ByteBufAllocator alloc) {
        return keyless.newEngine(alloc);
    }

    @Override
    public SSLEngine newEngine(ByteBufAllocator alloc, String peerHost, int peerPort) {
        return keyless.newEngine(alloc, peerHost, peerPort);
    }

    @Override
    protected SslHandler newHandler(ByteBufAllocator alloc, boolean startTls) {
        return newHandler(alloc, startTls, ImmediateExecutor.INSTANCE);
    }

    @Override
    protected SslHandler newHandler(ByteBufAllocator alloc, boolean startTls, Executor executor) {
        Objects.requireNonNull(alloc, "alloc");
        AsyncSslContext c = admit();
        return c.counted(c.wrap(c.keyless.newEngine(alloc), startTls, executor));
    }

    @Override
    protected SslHandler newHandler(ByteBufAllocator alloc, String peerHost, int peerPort, boolean startTls) {
        return newHandler(alloc, peerHost, peerPort, startTls, ImmediateExecutor.INSTANCE);
    }

    @Override
    protected SslHandler newHandler(ByteBufAllocator alloc, String peerHost, int peerPort, boolean startTls,
                                    Executor executor) {
        Objects.requireNonNull(alloc, "alloc");
        AsyncSslContext c = admit();
        return c.counted(c.wrap(c.keyless.newEngine(alloc, peerHost, peerPort), startTls, executor));
    }

    /**
     * The context that takes a new handshake: this one, or, when this one has been replaced, its successor (a
     * handshake whose server name was looked up just before the replacement thus still uses the new pair). Counts the
     * handshake on the context returned. The count is taken before the retired flag is read and the flag is set
     * before the retirer reads the count (both volatile), so either the handshake moves on to the successor or the
     * retirer sees it and waits for it: no handshake can start on an engine that is being closed.
     */
    private AsyncSslContext admit() {
        AsyncSslContext c = this;
        for (;;) {
            c.handshakes.incrementAndGet();
            AsyncSslContext next = c.successor;
            if (!c.retired || next == null) {
                return c;
            }
            c.handshakeEnded();
            c = next;
        }
    }

    private SslHandler counted(SslHandler handler) {
        handler.handshakeFuture().addListener(f -> handshakeEnded());
        return handler;
    }

    private void handshakeEnded() {
        if (handshakes.decrementAndGet() == 0 && retired) {
            checkRetiredIdle();
        }
    }

    private SslHandler wrap(SSLEngine sslEngine, boolean startTls, Executor executor) {
        Objects.requireNonNull(executor, "executor");
        if (method == null) {
            // The JDK's engine signs inside its delegated tasks: run them on the engine's threads unless the caller
            // chose an executor of its own.
            Executor tasks = executor == ImmediateExecutor.INSTANCE ? engine.taskExecutor() : executor;
            return new SslHandler(sslEngine, startTls, tasks);
        }
        return new OffloadingSslHandler(this, sslEngine, startTls, executor);
    }

    /**
     * The pipeline handler of a channel's offload, for code that needs the connection's offload state (tests,
     * probes): adding it adds the {@link SslHandler} right after it. Event loop of the channel.
     */
    AsyncOffloadHandler newOffloadHandler(Channel channel) {
        Objects.requireNonNull(channel, "channel");
        SslHandler ssl = newHandler(channel.alloc());
        if (!(ssl instanceof OffloadingSslHandler o)) {
            throw new IllegalStateException("the JDK provider path has no offload handler");
        }
        return o.offload();
    }

    /**
     * True when {@code ssl} was made by an {@code AsyncSslContext} and so sends TLS 1.3 session tickets right after the
     * handshake by itself; a stock handler needs a {@link SessionTicketFlusher} after it for that. Any thread.
     */
    public static boolean flushesTickets(SslHandler ssl) {
        return ssl instanceof OffloadingSslHandler;
    }

    /** The offload handler of {@code ssl} if it is one of this library's handlers, else null. */
    static AsyncOffloadHandler offloadHandlerOf(SslHandler ssl) {
        return ssl instanceof OffloadingSslHandler o ? o.offload() : null;
    }

    // ---- offload ----

    /** The engine that performs the private-key operations. */
    public AsyncEngine engine() {
        return engine;
    }

    /** The offload settings. */
    public OffloadConfig config() {
        return config;
    }

    /** True when handshakes pause and resume through jobs (BoringSSL); false on the JDK provider path. */
    public boolean isAsync() {
        return method != null;
    }

    /**
     * Private-key operations handed to the engine through this context so far (both paths, fallback attempts not
     * counted twice). Any thread.
     */
    public long offloadedOperations() {
        return method == null ? 0 : method.operations();
    }

    /** Of {@link #offloadedOperations()}, those of engines not bound to a channel (see the class javadoc). */
    public long detachedOperations() {
        return method == null ? 0 : method.detachedOperations();
    }

    /** Operations run inline on the event loop under the context's {@link InlinePolicy} so far. Any thread. */
    public long inlineOperations() {
        return method == null ? 0 : method.inlineOperations();
    }

    /**
     * Operations handed to the engine and not yet completed, failed or abandoned: what a graceful shutdown or a key
     * rotation waits for before it closes the engine. Any thread.
     */
    public long operationsInFlight() {
        return method == null ? 0 : method.inFlight();
    }

    /** The signature schemes that run inline (measured at build time under the {@link InlinePolicy}). */
    public Set<SignatureScheme> inlineSchemes() {
        return method == null ? Set.of() : method.inlineSchemes();
    }

    /** Channels bound to this context now (open channels whose handlers are in a pipeline). Any thread. */
    public int boundChannels() {
        return method == null ? 0 : method.boundChannels();
    }

    /**
     * Handshakes of this context's handlers that have started and not yet ended: with {@link #operationsInFlight()},
     * what a replaced context waits for before its engine is closed. A handshake counts from the moment its handler
     * is made. Any thread.
     */
    public long handshakesInProgress() {
        return handshakes.get();
    }

    /** Offloaded operations that failed (engine error, deadline, cancel, exhausted retries) so far. Any thread. */
    public long failedOperations() {
        return method == null ? 0 : method.failures();
    }

    /** Nanoseconds the bound path's offloaded operations took (hand-off to end), summed. Any thread. */
    long operationNanos() {
        return method == null ? 0 : method.operationNanos();
    }

    /**
     * Marks this context replaced by {@code next} (null: no successor, new handshakes still start here) and runs
     * {@code onIdle} once, on the thread that ends the last of them, when no handshake of this context is in progress
     * and no operation is in flight (possibly at once, on the calling thread). {@code onIdle} must not block: it runs
     * on an event loop. Once.
     */
    void retire(AsyncSslContext next, Runnable onIdle) {
        Objects.requireNonNull(onIdle, "onIdle");
        if (retired) {
            throw new IllegalStateException("context already retired");
        }
        this.onRetiredIdle = onIdle;
        this.successor = next;
        if (method != null) {
            method.afterOperation(this::checkRetiredIdle);
        }
        this.retired = true;
        checkRetiredIdle();
    }

    boolean isRetired() {
        return retired;
    }

    private void checkRetiredIdle() {
        // Handshakes first: while none is in progress no new bound operation can start, so in-flight only falls.
        if (retired && handshakes.get() == 0 && operationsInFlight() == 0 && idleFired.compareAndSet(false, true)) {
            onRetiredIdle.run();
        }
    }

    /** The engines this context uses (its engine, the second key's and the fallback engine, if any). */
    List<AsyncEngine> engines() {
        java.util.ArrayList<AsyncEngine> out = new java.util.ArrayList<>(List.of(engine));
        AsyncEngine second = secondEngine();
        if (second != null && second != engine) {
            out.add(second);
        }
        AsyncEngine fallback = config.fallbackEngine();
        if (fallback != null && !out.contains(fallback)) {
            out.add(fallback);
        }
        return List.copyOf(out);
    }

    /** The engine of the second key (RSA and ECDSA side by side), or null. */
    public AsyncEngine secondEngine() {
        return method == null ? null : method.secondEngine();
    }

    AsyncPrivateKeyMethodAdapter method() {
        return method;
    }

    SslContext keyless() {
        return keyless;
    }
}
