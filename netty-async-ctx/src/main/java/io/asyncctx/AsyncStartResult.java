package io.asyncctx;

/**
 * Threading: an enum, immutable and safe on any thread.
 *
 * <p>What {@link AsyncJob#start()} and {@link AsyncJob#resume()} report, the counterpart of the return values of
 * OpenSSL's {@code ASYNC_start_job}.
 */
public enum AsyncStartResult {
    /** The job is paused waiting for its operation: wait on the ctx's fds or its callback, then resume it. */
    PAUSE,
    /** The job has finished with a result: {@link AsyncJob#result()}. */
    FINISH,
    /** The job has failed: {@link AsyncJob#failure()} says why; the session should be cleaned up. */
    ERR,
    /** The pool has no free job: wait with {@link AsyncJobPool#awaitSlot} and start the job again. */
    NO_JOBS
}
