package io.asyncctx.netty;

import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.ChangedFds;

import java.util.Arrays;

/**
 * The wait fds one connection waits on in its loop's {@link WaitFdRegistry}: applies the ctx's changed fds after each
 * pause, releases them on close, and counts the released registrations that have not yet left the loop (the ctx, which
 * closes the fds, may only close after they have).
 *
 * <p><b>Threading.</b> Loop thread only.
 */
final class ConnectionWaitFds {

    /** An fd the loop could not poll, and why. */
    record Failure(int fd, Throwable cause) {
    }

    private final WaitFdRegistry registry;
    private final AsyncOffloadConnection owner;
    private int[] fds = new int[2];
    /** The registry's entry of each fd in {@link #fds}, same index. */
    private WaitFdRegistry.Entry[] entries = new WaitFdRegistry.Entry[2];
    private int count;
    /** Released registrations not yet removed from the loop, plus one while {@link #releaseAll()} runs. */
    private int pendingUnregisters;

    ConnectionWaitFds(WaitFdRegistry registry, AsyncOffloadConnection owner) {
        this.registry = registry;
        this.owner = owner;
    }

    /** The number of fds waited on. */
    int count() {
        return count;
    }

    /** The registry's entry of the one fd waited on, or null when there are several or none. */
    WaitFdRegistry.Entry single() {
        return count == 1 ? entries[0] : null;
    }

    /** The fds waited on, sorted; for tests and {@code toString}. */
    int[] sorted() {
        int[] copy = Arrays.copyOf(fds, count);
        Arrays.sort(copy);
        return copy;
    }

    /**
     * Applies the ctx's changed fds to the registry: deleted fds are released, added ones acquired. Does nothing on a
     * loop that cannot poll fds.
     *
     * @return null on success, else the first fd that could not be registered (the fds before it are acquired)
     */
    Failure sync(AsyncWaitCtx ctx) {
        if (!registry.supportsFds() || (ctx.numAddedFds() == 0 && ctx.numDeletedFds() == 0)) {
            return null;
        }
        ChangedFds changed = ctx.getChangedFds();
        for (int fd : changed.deleted()) {
            release(fd);
        }
        for (int fd : changed.added()) {
            if (indexOf(fd) >= 0) {
                continue;
            }
            Throwable failure = registry.acquire(owner, fd);
            if (failure != null) {
                return new Failure(fd, failure);
            }
            if (count == fds.length) {
                fds = Arrays.copyOf(fds, count * 2);
                entries = Arrays.copyOf(entries, count * 2);
            }
            entries[count] = registry.entry(fd);
            fds[count++] = fd;
        }
        return null;
    }

    /**
     * Releases every fd (the connection closes).
     *
     * @return true when no released registration is left on the loop (the ctx may close now); false when
     *     {@link #onUnregistered()} will say so later
     */
    boolean releaseAll() {
        pendingUnregisters++; // held while releasing, so a synchronous unregistered() cannot report zero early
        for (int i = 0; i < count; i++) {
            pendingUnregisters++;
            if (!registry.release(owner, fds[i])) {
                pendingUnregisters--;
            }
            entries[i] = null;
        }
        count = 0;
        return --pendingUnregisters == 0;
    }

    /**
     * One registration this connection released has left the loop.
     *
     * @return true when it was the last one
     */
    boolean onUnregistered() {
        return --pendingUnregisters == 0;
    }

    private void release(int fd) {
        int i = indexOf(fd);
        if (i < 0) {
            return;
        }
        fds[i] = fds[--count];
        entries[i] = entries[count];
        entries[count] = null;
        pendingUnregisters++;
        if (!registry.release(owner, fd)) {
            pendingUnregisters--;
        }
    }

    private int indexOf(int fd) {
        for (int i = 0; i < count; i++) {
            if (fds[i] == fd) {
                return i;
            }
        }
        return -1;
    }
}
