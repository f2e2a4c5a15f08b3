package io.asyncctx;

/**
 * Threading: called by {@link AsyncWaitCtx#close()} on the thread that closes the ctx (the job's owner thread, in
 * the Netty integration the channel's event loop), once for every fd that was not cleared with
 * {@link AsyncWaitCtx#clearFd}. It is never called for a cleared fd.
 *
 * <p>The cleanup routine given with a wait fd to {@link AsyncWaitCtx#setWaitFd}: the engine's chance to close the fd or
 * release whatever else it keeps for it.
 */
@FunctionalInterface
public interface WaitFdCleanup {

    /**
     * Releases the fd registered under {@code key}.
     *
     * @param ctx the ctx being closed
     * @param key the key the fd was set under
     * @param fd the fd
     * @param customData the custom data given with the fd, may be {@code null}
     */
    void cleanup(AsyncWaitCtx ctx, Object key, int fd, Object customData);
}
