package io.asyncctx.netty;

import java.util.concurrent.TimeoutException;

/**
 * Threading: an ordinary immutable exception, safe on any thread.
 *
 * <p>An offloaded operation did not complete within {@link OffloadConfig#operationTimeout()}: its job was abandoned and
 * the engine told to cancel it.
 */
public class AsyncOffloadTimeoutException extends TimeoutException {

    private static final long serialVersionUID = 1L;

    /** Creates the exception with a message naming the timeout and the engine. */
    public AsyncOffloadTimeoutException(String message) {
        super(message);
    }
}
