package io.asyncctx;

import java.util.ArrayList;
import java.util.Objects;

/**
 * Threading: the wait-fd table ({@link #setWaitFd}, {@link #getFd}, {@link #getAllFds},
 * {@link #getChangedFds}, {@link #clearFd}, {@link #close()}) belongs to the thread that runs the ctx's jobs (its
 * owner; in the Netty integration the channel's event loop) and is not thread-safe. The callback and the status
 * ({@link #setCallback}, {@link #getCallback}, {@link #getCallbackArg}, {@link #setStatus}, {@link #getStatus}) may be
 * set and read from any thread, such as an engine's completion thread; each is published safely (volatile). The
 * callback and its argument are published together as one {@link CallbackBinding}: read both at once with
 * {@link #getCallbackBinding()} when another thread may be changing them.
 *
 * <p>The wait context of one asynchronous "session" (one TLS connection): the Java counterpart of OpenSSL's
 * {@code ASYNC_WAIT_CTX}, one function for one function.
 *
 * <p><b>Rules</b> (those of {@code crypto/async/async_wait.c}):
 * <ul>
 *   <li>Keys are compared by identity ({@code ==}), never with {@code equals}. An engine typically uses itself as the
 *       key.</li>
 *   <li>{@link #getFd} and {@link #getAllFds} see only live fds: a cleared fd is invisible to them at once.</li>
 *   <li>{@link #getChangedFds} lists the fds added and deleted since the ctx's job last resumed. Read it after every
 *       pause and before the resume: resuming the job clears it and forgets the deleted entries.</li>
 *   <li>{@link #clearFd} of an fd added since the last resume removes it outright: it shows in neither change list.
 *       Clearing an older fd marks it deleted: it shows in the deleted list until the next resume.</li>
 *   <li>{@link #clearFd} never calls the cleanup routine; {@link #close()} calls it once for each fd not cleared.</li>
 *   <li>The status is {@link AsyncStatus#UNSUPPORTED} until someone sets another value. With any status but
 *       {@link AsyncStatus#OK}, no callback will come.</li>
 *   <li>A ctx serves one {@link AsyncJob} at a time and may serve another after that job ends.</li>
 * </ul>
 *
 * <p><b>Ownership.</b> Whoever creates the ctx closes it; closing runs the engines' cleanup routines, which typically
 * close their fds. Close only after every fd of the ctx has been removed from any event loop it was registered with.
 */
public final class AsyncWaitCtx implements AutoCloseable {

    /** One wait fd. {@code added}: set since the last resume; {@code deleted}: cleared, awaiting the next resume. */
    private static final class Entry {
        final Object key;
        final int fd;
        final Object customData;
        final WaitFdCleanup cleanup;
        boolean added = true;
        boolean deleted;

        Entry(Object key, int fd, Object customData, WaitFdCleanup cleanup) {
            this.key = key;
            this.fd = fd;
            this.customData = customData;
            this.cleanup = cleanup;
        }
    }

    private final ArrayList<Entry> entries = new ArrayList<>(2);
    private int numAdded;
    private int numDeleted;
    private volatile boolean closed;

    /** The callback and its argument, published as one immutable pair so that no reader can mix two writers' values. */
    private volatile CallbackBinding callbackBinding;
    private volatile AsyncStatus status = AsyncStatus.UNSUPPORTED;

    /** The job this ctx serves now, or null; owner thread only (see {@link AsyncJob}). */
    AsyncJob<?> currentJob;

    /** Creates an empty ctx: no fds, no callback, status {@link AsyncStatus#UNSUPPORTED}. */
    public AsyncWaitCtx() {
    }

    /**
     * Associates a wait fd with this ctx under {@code key} ({@code ASYNC_WAIT_CTX_set_wait_fd}). The fd appears in the
     * added list of {@link #getChangedFds()} until the job resumes.
     *
     * @param key the engine's key, compared by identity; not null
     * @param fd the fd, not negative
     * @param customData returned by {@link #getFd}, may be null
     * @param cleanup called by {@link #close()} unless the fd is cleared first; may be null
     * @throws IllegalStateException when a live fd is already set under {@code key} (clear it first), or the ctx is
     *     closed
     */
    public void setWaitFd(Object key, int fd, Object customData, WaitFdCleanup cleanup) {
        Objects.requireNonNull(key, "key");
        if (fd < 0) {
            throw new IllegalArgumentException("fd: " + fd + " (expected a non-negative file descriptor)");
        }
        ensureOpen("setWaitFd");
        if (findLive(key) != null) {
            throw new IllegalStateException("key " + describe(key) + " already has a live wait fd; call clearFd(key) "
                    + "before setting another");
        }
        entries.add(new Entry(key, fd, customData, cleanup));
        numAdded++;
    }

    /**
     * The live fd set under {@code key} ({@code ASYNC_WAIT_CTX_get_fd}).
     *
     * @return the fd and its custom data, or null when {@code key} has no live fd (never set, cleared, or closed)
     */
    public WaitFd getFd(Object key) {
        Objects.requireNonNull(key, "key");
        Entry e = findLive(key);
        return e == null ? null : new WaitFd(e.fd, e.customData);
    }

    /**
     * Counts the live fds and, when {@code fds} is not null, copies them into it in the order they were set
     * ({@code ASYNC_WAIT_CTX_get_all_fds}). Call it with null first to learn the size to allocate.
     *
     * @param fds the array to fill, or null to only count
     * @return the number of live fds
     * @throws IllegalArgumentException when {@code fds} is shorter than the number of live fds
     */
    public int getAllFds(int[] fds) {
        int live = entries.size() - numDeleted;
        if (fds == null) {
            return live;
        }
        if (fds.length < live) {
            throw new IllegalArgumentException("fds: length " + fds.length + " is too small for " + live
                    + " live fds; call getAllFds(null) first to learn the size");
        }
        int i = 0;
        for (Entry e : entries) {
            if (!e.deleted) {
                fds[i++] = e.fd;
            }
        }
        return live;
    }

    /**
     * The fds added and deleted since the job last resumed ({@code ASYNC_WAIT_CTX_get_changed_fds}). An fd both added
     * and cleared in the same window appears in neither list.
     *
     * @return a snapshot; {@link ChangedFds#isEmpty()} when nothing changed (then no array is allocated)
     */
    public ChangedFds getChangedFds() {
        if (numAdded == 0 && numDeleted == 0) {
            return ChangedFds.NONE;
        }
        int[] added = numAdded == 0 ? ChangedFds.NO_FDS : new int[numAdded];
        int[] deleted = numDeleted == 0 ? ChangedFds.NO_FDS : new int[numDeleted];
        int a = 0;
        int d = 0;
        for (Entry e : entries) {
            if (e.deleted) {
                deleted[d++] = e.fd;
            } else if (e.added) {
                added[a++] = e.fd;
            }
        }
        return new ChangedFds(added, deleted);
    }

    /** The number of fds that {@link #getChangedFds()} would list as added, without allocating. */
    public int numAddedFds() {
        return numAdded;
    }

    /** The number of fds that {@link #getChangedFds()} would list as deleted, without allocating. */
    public int numDeletedFds() {
        return numDeleted;
    }

    /**
     * Clears the live fd set under {@code key} ({@code ASYNC_WAIT_CTX_clear_fd}). Its cleanup routine is not called:
     * the caller releases the fd itself. An fd set since the last resume disappears from the change lists; an older
     * one appears in the deleted list until the next resume.
     *
     * @return false when {@code key} has no live fd
     * @throws IllegalStateException when the ctx is closed
     */
    public boolean clearFd(Object key) {
        Objects.requireNonNull(key, "key");
        ensureOpen("clearFd");
        for (int i = 0; i < entries.size(); i++) {
            Entry e = entries.get(i);
            if (e.deleted || e.key != key) {
                continue;
            }
            if (e.added) {
                entries.remove(i);
                numAdded--;
            } else {
                e.deleted = true;
                numDeleted++;
            }
            return true;
        }
        return false;
    }

    /**
     * Sets the completion callback and its argument ({@code ASYNC_WAIT_CTX_set_callback}); a null callback clears
     * both. Any thread.
     *
     * @throws IllegalStateException when the ctx is closed
     */
    public void setCallback(AsyncCallback callback, Object callbackArg) {
        ensureOpen("setCallback");
        // One write of one immutable pair: two racing writers can never leave one's callback with the other's argument.
        callbackBinding = callback == null ? null : new CallbackBinding(callback, callbackArg);
        if (closed) {
            // Raced with close(): whichever write came last, leave the ctx without a callback.
            callbackBinding = null;
            ensureOpen("setCallback");
        }
    }

    /**
     * The callback, or null when none is set. Any thread. When another thread may change the callback, use
     * {@link #getCallbackBinding()} to read the callback and its argument as one pair.
     */
    public AsyncCallback getCallback() {
        CallbackBinding b = callbackBinding;
        return b == null ? null : b.callback();
    }

    /**
     * The callback's argument, or null when none is set. Any thread. When another thread may change the callback, use
     * {@link #getCallbackBinding()} to read the callback and its argument as one pair.
     */
    public Object getCallbackArg() {
        CallbackBinding b = callbackBinding;
        return b == null ? null : b.arg();
    }

    /**
     * The callback and its argument read in one step, as {@code ASYNC_WAIT_CTX_get_callback} returns both at once: the
     * pair that one {@link #setCallback} call set. Any thread.
     *
     * @return the pair, or null when no callback is set
     */
    public CallbackBinding getCallbackBinding() {
        return callbackBinding;
    }

    /**
     * Sets the engine status ({@code ASYNC_WAIT_CTX_set_status}). Any thread.
     *
     * @throws IllegalStateException when the ctx is closed
     */
    public void setStatus(AsyncStatus status) {
        Objects.requireNonNull(status, "status");
        ensureOpen("setStatus");
        this.status = status;
        if (closed) {
            // Raced with close(): leave the closed ctx with the default status.
            this.status = AsyncStatus.UNSUPPORTED;
            ensureOpen("setStatus");
        }
    }

    /** The engine status: {@link AsyncStatus#UNSUPPORTED} until set. Any thread. */
    public AsyncStatus getStatus() {
        return status;
    }

    /** True once {@link #close()} has run. Any thread. */
    public boolean isClosed() {
        return closed;
    }

    /** The job this ctx serves now, or null. Owner thread. */
    public AsyncJob<?> currentJob() {
        return currentJob;
    }

    /**
     * Frees the ctx ({@code ASYNC_WAIT_CTX_free}): calls the cleanup routine of every fd not cleared, once each, in the
     * order they were set, then forgets all fds and the callback and resets the status to
     * {@link AsyncStatus#UNSUPPORTED}. Idempotent. Cleanup routines that throw do not stop the others; the first
     * exception is rethrown at the end with the others suppressed.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        callbackBinding = null;
        status = AsyncStatus.UNSUPPORTED;
        RuntimeException failure = null;
        try {
            for (Entry e : entries) {
                if (e.deleted || e.cleanup == null) {
                    continue;
                }
                try {
                    e.cleanup.cleanup(this, e.key, e.fd, e.customData);
                } catch (RuntimeException ex) {
                    if (failure == null) {
                        failure = ex;
                    } else {
                        failure.addSuppressed(ex);
                    }
                }
            }
        } finally {
            // Even when a cleanup throws an Error, the closed ctx holds no fds.
            entries.clear();
            numAdded = 0;
            numDeleted = 0;
        }
        if (failure != null) {
            throw failure;
        }
    }

    /**
     * Forgets the change set, as {@code ASYNC_pause_job} does when the job resumes: deleted entries are dropped, added
     * ones become plain live fds. Called by {@link AsyncJob} on the owner thread.
     */
    void resetChanges() {
        if (numDeleted != 0) {
            entries.removeIf(e -> e.deleted);
        }
        if (numAdded != 0) {
            for (Entry e : entries) {
                e.added = false;
            }
        }
        numAdded = 0;
        numDeleted = 0;
    }

    /**
     * Threading: immutable, safe on any thread. {@link #call()} runs the callback on the calling thread.
     *
     * <p>A callback and its argument as set together by one {@link #setCallback} call; see {@link
     * #getCallbackBinding()}.
     *
     * @param callback the callback, not null
     * @param arg its argument, may be null
     */
    public record CallbackBinding(AsyncCallback callback, Object arg) {

        /** Creates a pair; the callback may not be null. */
        public CallbackBinding {
            Objects.requireNonNull(callback, "callback");
        }

        /** Calls the callback with its argument and returns what it returns. */
        public int call() {
            return callback.call(arg);
        }
    }

    private Entry findLive(Object key) {
        for (Entry e : entries) {
            if (!e.deleted && e.key == key) {
                return e;
            }
        }
        return null;
    }

    private void ensureOpen(String op) {
        if (closed) {
            throw new IllegalStateException(op + ": this AsyncWaitCtx is closed; create a new one for a new session");
        }
    }

    private static String describe(Object key) {
        return key.getClass().getName() + '@' + Integer.toHexString(System.identityHashCode(key));
    }

    @Override
    public String toString() {
        return "AsyncWaitCtx[fds=" + (entries.size() - numDeleted) + ", added=" + numAdded + ", deleted=" + numDeleted
                + ", status=" + status + (closed ? ", closed" : "") + ']';
    }
}
