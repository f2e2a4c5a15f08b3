package io.asyncctx.engine;

import io.asyncctx.AsyncCallback;
import io.asyncctx.AsyncJob;

/**
 * Threading: created on the owner thread; then used by the engine's threads. {@link #complete} and
 * {@link #fail} may be called from any thread, once (later calls are ignored); they deliver to the job and then signal,
 * unless the job was abandoned, in which case nothing is signalled. Signalling after the connection has gone is
 * harmless: a closed {@link EventFd} ignores it and the callback only queues a resume that finds no job.
 *
 * <p>One operation handed to an {@link AbstractAsyncEngine}: the job it belongs to, the operation, and how its
 * completion is signalled (the ctx's callback, or the wait fd), captured on the owner thread when it was submitted.
 */
public final class PendingOperation {

    private final AsyncJob<byte[]> job;
    private final KeyOperation operation;
    private final AsyncCallback callback;
    private final Object callbackArg;
    private final EventFd eventFd;
    private final long submittedNanos;

    PendingOperation(AsyncJob<byte[]> job, KeyOperation operation, AsyncCallback callback, Object callbackArg,
                     EventFd eventFd) {
        this.job = job;
        this.operation = operation;
        this.callback = callback;
        this.callbackArg = callbackArg;
        this.eventFd = eventFd;
        this.submittedNanos = System.nanoTime();
    }

    /** The operation to perform. */
    public KeyOperation operation() {
        return operation;
    }

    /** The job; engines use it only to complete or fail it, or as an identity. */
    public AsyncJob<byte[]> job() {
        return job;
    }

    /** {@link System#nanoTime()} when the operation was submitted. */
    public long submittedNanos() {
        return submittedNanos;
    }

    /** True when the job was abandoned or has ended: skip the work. Any thread. */
    public boolean isCancelled() {
        return job.isDone();
    }

    /** True when completion is signalled through the ctx's callback, false for the wait fd. */
    public boolean usesCallback() {
        return callback != null;
    }

    /** The wait fd that completion is signalled on, or null on the callback path. */
    public EventFd eventFd() {
        return eventFd;
    }

    /** Delivers the result and signals. Any thread. */
    public void complete(byte[] result) {
        if (job.complete(result)) {
            signal();
        }
    }

    /** Delivers a failure and signals. Any thread. */
    public void fail(Throwable cause) {
        if (job.fail(cause)) {
            signal();
        }
    }

    /**
     * Delivers the result without signalling, for engines that complete many operations at once and signal each
     * distinct wait fd once ({@link #signal()}).
     *
     * @return true when the job took the result and must be signalled
     */
    public boolean completeQuietly(byte[] result) {
        return job.complete(result);
    }

    /**
     * Delivers a failure without signalling, for batching engines ({@link #completeQuietly}).
     *
     * @return true when the job took the failure and must be signalled
     */
    public boolean failQuietly(Throwable cause) {
        return job.fail(cause);
    }

    /** Signals the completion: calls the callback, or makes the wait fd readable. Any thread. */
    public void signal() {
        if (callback != null) {
            callback.call(callbackArg);
        } else if (eventFd != null) {
            eventFd.signal();
        }
    }

    @Override
    public String toString() {
        return "PendingOperation[" + operation + ", " + job + ']';
    }
}
