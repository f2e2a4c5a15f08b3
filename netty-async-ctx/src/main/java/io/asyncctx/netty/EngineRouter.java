package io.asyncctx.netty;

import io.asyncctx.AsyncEngineException;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.EngineSession;

import java.util.Objects;
import java.util.concurrent.Executor;

/**
 * Chooses the engine of one connection's operation: the primary, or the fallback ({@link OffloadConfig#fallbackEngine()})
 * when the primary failed the operation or is unhealthy on this loop (after {@link OffloadConfig#unhealthyAfterFailures()}
 * failures in a row it is skipped for {@link OffloadConfig#unhealthyCooldown()}, then one operation probes it). Owns the
 * connection's engine sessions: the primary's, opened with the connection, and the fallback's, opened at the first
 * fallback; both are closed by {@link #close()}.
 *
 * <p><b>Threading.</b> Owner-thread confined (the connection's event loop). Times are passed in
 * ({@link System#nanoTime()}), so the health rule can be driven by a test clock.
 */
final class EngineRouter {

    private static final System.Logger LOG = System.getLogger(EngineRouter.class.getName());

    private final AsyncEngine primary;
    private final EngineSession primarySession;
    private final AsyncEngine fallback;
    private final LoopState.EngineHealth health;
    private final OffloadConfig config;
    private EngineSession fallbackSession;
    private boolean onFallback;
    private Throwable primaryFailure;

    /**
     * @param primarySession the primary's session for this connection (closed by {@link #close()})
     * @param fallback the fallback engine, or null
     * @param health the primary's health on this loop (shared by the loop's connections)
     */
    EngineRouter(AsyncEngine primary, EngineSession primarySession, AsyncEngine fallback,
                 LoopState.EngineHealth health, OffloadConfig config) {
        this.primary = Objects.requireNonNull(primary, "primary");
        this.primarySession = Objects.requireNonNull(primarySession, "primarySession");
        this.fallback = fallback;
        this.health = Objects.requireNonNull(health, "health");
        this.config = Objects.requireNonNull(config, "config");
    }

    /** True when a new operation should go straight to the fallback: there is one and the primary is unhealthy. */
    boolean skipPrimary(long now) {
        return fallback != null && health.skipPrimary(config, now);
    }

    /** The operation runs on the primary now. */
    EngineSession usePrimary() {
        onFallback = false;
        return primarySession;
    }

    /**
     * The operation runs on the fallback now ({@code cause}: why the primary was left, or null when it was skipped).
     * Opens the fallback's session on first use.
     *
     * @throws AsyncEngineException when the fallback's session cannot be opened (with {@code cause} suppressed)
     */
    EngineSession useFallback(AsyncWaitCtx ctx, Executor owner, Throwable cause) throws AsyncEngineException {
        primaryFailure = cause;
        EngineSession fs = fallbackSession;
        if (fs == null) {
            try {
                fs = Objects.requireNonNull(fallback.newSession(ctx, owner), "fallback newSession returned null");
            } catch (RuntimeException e) {
                AsyncEngineException failure = new AsyncEngineException("could not open a session of fallback "
                        + "engine '" + fallback.name() + "': " + e, e);
                if (cause != null) {
                    failure.addSuppressed(cause);
                }
                throw failure;
            }
            fallbackSession = fs;
        }
        onFallback = true;
        return fs;
    }

    /** True when the operation runs on the fallback. */
    boolean onFallback() {
        return onFallback;
    }

    /** True when a failure of the current attempt can still move to the fallback. */
    boolean canFallBack() {
        return fallback != null && !onFallback;
    }

    /** The engine of the current attempt. */
    AsyncEngine current() {
        return onFallback ? fallback : primary;
    }

    /** The fallback engine, or null. */
    AsyncEngine fallback() {
        return fallback;
    }

    /** The current attempt's engine failed the operation (ERR, EAGAIN exhausted, deadline while it held it). */
    void attemptFailed(long now) {
        if (!onFallback) {
            health.onFailure(config, now);
        }
    }

    /** The current attempt succeeded. */
    void attemptSucceeded() {
        if (!onFallback) {
            health.onSuccess();
        }
    }

    /** The final failure of an operation: carries the primary's failure when the fallback failed too. */
    Throwable finalFailure(Throwable cause) {
        if (onFallback && primaryFailure != null && primaryFailure != cause) {
            cause.addSuppressed(primaryFailure);
        }
        return cause;
    }

    /** The operation ended: the next one starts on the primary again. */
    void reset() {
        onFallback = false;
        primaryFailure = null;
    }

    /** Closes the sessions (the connection closes). Never throws. */
    void close() {
        try {
            primarySession.close();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.DEBUG, "engine session close failed", e);
        }
        if (fallbackSession != null) {
            try {
                fallbackSession.close();
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.DEBUG, "fallback engine session close failed", e);
            }
        }
    }
}
