package io.asyncctx;

/**
 * Threading: an engine calls it on any thread (its completion or polling thread), possibly before the job has
 * finished pausing. An implementation must be small and non-blocking: it hands the resumption of the job to the job's
 * owner thread (for example {@code channel.eventLoop().execute(...)}) and returns. It must not take locks that the
 * owner thread may hold, must not block and must not throw.
 *
 * <p>The completion callback of an {@link AsyncWaitCtx}, the counterpart of OpenSSL's {@code ASYNC_callback_fn}.
 */
@FunctionalInterface
public interface AsyncCallback {

    /**
     * Signals that the operation of the ctx's current job has completed.
     *
     * @param arg the argument given with the callback to {@link AsyncWaitCtx#setCallback}
     * @return 1 when the resumption was handed off, 0 when it could not be (the owner is gone); engines may ignore it
     */
    int call(Object arg);
}
