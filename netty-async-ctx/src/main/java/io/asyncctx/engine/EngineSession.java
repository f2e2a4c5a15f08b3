package io.asyncctx.engine;

import io.asyncctx.AsyncJob;

/**
 * Threading: bound to the connection's owner thread (its event loop): every method is called on that thread
 * only, and none may block. Completions are delivered from the engine's own threads with {@link AsyncJob#complete} or
 * {@link AsyncJob#fail}, followed by the ctx's signal.
 *
 * <p>The engine's side of one connection (Envoy's private-key connection): it submits that connection's operations.
 */
public interface EngineSession extends AutoCloseable {

    /**
     * Submits {@code operation} for {@code job}; called from inside the job's operation (on the owner thread) by
     * {@link AsyncJob#start()} and again by {@link AsyncJob#resume()} after EAGAIN. Before returning it either
     * completes or fails the job, or tells the job's ctx how completion will be signalled: it sets a wait fd (fd path),
     * or sets status OK when the ctx has a callback (callback path); it sets status EAGAIN when it cannot take the
     * operation now and ERR on a fatal fault.
     */
    void submit(AsyncJob<byte[]> job, KeyOperation operation);

    /**
     * The job was abandoned (its connection closed, or its deadline passed): drop its work if it is still queued. A
     * completion that comes anyway is dropped by the job. Owner thread.
     */
    default void cancel(AsyncJob<byte[]> job) {
    }

    /** The connection is gone; the session releases what it holds (its ctx's fds are released by the ctx). */
    @Override
    default void close() {
    }
}
