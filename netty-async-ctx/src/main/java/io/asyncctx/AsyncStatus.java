package io.asyncctx;

/**
 * Threading: an enum, immutable and safe on any thread. An engine sets the status on the ctx from the thread that
 * submits its operation; user code reads it on the job's owner thread after the job pauses.
 *
 * <p>The engine status kept in an {@link AsyncWaitCtx}, the counterpart of OpenSSL's {@code ASYNC_STATUS_*} values.
 */
public enum AsyncStatus {
    /** The engine does not use the callback mechanism (the default): wait on the ctx's wait fds instead. */
    UNSUPPORTED(0),
    /** The engine has a fatal problem with this request: clean the session up, no callback will come. */
    ERR(1),
    /** The request was submitted: the callback set on the ctx will be called when it completes. */
    OK(2),
    /** The engine cannot take the request now (a full queue or ring): resume the job yourself later to retry. */
    EAGAIN(3);

    private static final AsyncStatus[] BY_CODE = values();

    private final int code;

    AsyncStatus(int code) {
        this.code = code;
    }

    /** The numeric value of the matching OpenSSL constant: 0 for UNSUPPORTED up to 3 for EAGAIN. */
    public int code() {
        return code;
    }

    /**
     * The status for an OpenSSL status code.
     *
     * @throws IllegalArgumentException when {@code code} is not 0, 1, 2 or 3
     */
    public static AsyncStatus fromCode(int code) {
        if (code < 0 || code >= BY_CODE.length) {
            throw new IllegalArgumentException("code: " + code + " is not an ASYNC_STATUS value (expected 0..3)");
        }
        return BY_CODE[code];
    }
}
