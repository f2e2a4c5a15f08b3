package io.asyncctx;

/**
 * Threading: immutable, safe on any thread.
 *
 * <p>A wait fd and its custom data, as returned by {@link AsyncWaitCtx#getFd}.
 *
 * @param fd the file descriptor that turns readable when the job should be resumed
 * @param customData the engine's data given with the fd, may be {@code null}
 */
public record WaitFd(int fd, Object customData) {
}
