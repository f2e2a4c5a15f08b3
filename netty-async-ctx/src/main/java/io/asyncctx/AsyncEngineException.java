package io.asyncctx;

/**
 * Threading: an ordinary immutable exception, safe on any thread.
 *
 * <p>An engine could not perform an offloaded operation: it reported {@link AsyncStatus#ERR}, or failed the job.
 */
public class AsyncEngineException extends Exception {

    private static final long serialVersionUID = 1L;

    /** Creates the exception with a message that says what failed. */
    public AsyncEngineException(String message) {
        super(message);
    }

    /** Creates the exception with a message and the underlying cause. */
    public AsyncEngineException(String message, Throwable cause) {
        super(message, cause);
    }
}
