package io.asyncctx.engine;

import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncStatus;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.WaitFd;

import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Threading: thread-safe. Sessions are used on their owner threads; {@link #offer} and {@link #cancel} are
 * called on the submitting connection's owner thread and must not block; completions come from the engine's threads
 * through {@link PendingOperation}.
 *
 * <p>The part every engine shares: how a submitted operation is signalled, per the man page. When the job's ctx has a
 * callback, the engine sets status {@link AsyncStatus#OK} and calls the callback on completion. Otherwise it sets a
 * wait fd on the ctx and makes it readable on completion: either one {@link EventFd} per ctx, stable for the ctx's
 * life (the man page's mode), or one per event loop shared by all ctxs of that loop (the scalable mode; the fd count
 * does not grow with connections). When {@link #offer} refuses, the status is {@link AsyncStatus#EAGAIN}.
 */
public abstract class AbstractAsyncEngine implements AsyncEngine {

    /** Threading: an enum, any thread. How the fd path signals. */
    public enum FdMode {
        /** One eventfd per ctx, created at the ctx's first fd-path operation and closed by the ctx's cleanup. */
        PER_CTX,
        /** One eventfd per event loop, shared by all ctxs of that loop, closed when the last of them closes. */
        SHARED_PER_LOOP
    }

    /** A shared eventfd and the number of ctxs that hold it. Guarded by {@link #sharedFds}. */
    private static final class SharedFd {
        final Executor loop;
        final EventFd eventFd;
        int refs;

        SharedFd(Executor loop, EventFd eventFd) {
            this.loop = loop;
            this.eventFd = eventFd;
        }
    }

    private final String name;
    private final FdMode fdMode;
    private final Map<Executor, SharedFd> sharedFds = new HashMap<>();
    private final AtomicBoolean closed = new AtomicBoolean();

    /**
     * @param name the engine's name for logs and metrics
     * @param fdMode how the fd path signals
     */
    protected AbstractAsyncEngine(String name, FdMode fdMode) {
        this.name = Objects.requireNonNull(name, "name");
        this.fdMode = Objects.requireNonNull(fdMode, "fdMode");
    }

    @Override
    public final String name() {
        return name;
    }

    /** Threading: an enum, any thread. How the fd path signals. */
    public final FdMode fdMode() {
        return fdMode;
    }

    /** True once {@link #close()} has been called. */
    public final boolean isClosed() {
        return closed.get();
    }

    /**
     * The number of shared eventfds open now (one per event loop with live ctxs, in {@link FdMode#SHARED_PER_LOOP}).
     */
    public final int sharedFdCount() {
        synchronized (sharedFds) {
            return sharedFds.size();
        }
    }

    @Override
    public EngineSession newSession(AsyncWaitCtx ctx, Executor owner) {
        return new Session(Objects.requireNonNull(ctx, "ctx"), Objects.requireNonNull(owner, "owner"));
    }

    /**
     * Takes an operation for execution, on the submitting connection's owner thread. Must not block. Deliver the
     * outcome later, from any thread, with {@link PendingOperation#complete} or {@link PendingOperation#fail}.
     *
     * @return false when the engine cannot take it now (a full queue): the job's status becomes EAGAIN
     */
    protected abstract boolean offer(PendingOperation operation);

    /**
     * The job of {@code operation} was abandoned; drop it if it is still queued. Owner thread. Default: nothing. Only
     * called for an operation whose job had not finished (it was abandoned, or is still in flight).
     */
    protected void cancel(PendingOperation operation) {
    }

    /**
     * Marks the engine closed, once: true for the one caller that closed it, false for every later or concurrent call
     * (an idempotent CAS, any thread). Subclasses start their {@code close()} with {@code if (!markClosed()) return;}
     * so that new submissions fail from that moment, then stop their threads.
     */
    protected final boolean markClosed() {
        return closed.compareAndSet(false, true);
    }

    /** Marks the engine closed (see {@link #markClosed()}); subclasses stop their threads as well. */
    @Override
    public void close() {
        markClosed();
    }

    private EventFd waitFdFor(AsyncWaitCtx ctx, Executor owner) {
        WaitFd existing = ctx.getFd(this);
        if (existing != null) {
            Object data = existing.customData();
            return data instanceof SharedFd shared ? shared.eventFd : (EventFd) data;
        }
        if (fdMode == FdMode.PER_CTX) {
            EventFd eventFd = EventFd.create();
            boolean success = false;
            try {
                ctx.setWaitFd(this, eventFd.fd(), eventFd, (c, key, fd, data) -> ((EventFd) data).close());
                success = true;
            } finally {
                if (!success) {
                    eventFd.close();
                }
            }
            return eventFd;
        }
        SharedFd shared;
        synchronized (sharedFds) {
            shared = sharedFds.get(owner);
            if (shared == null) {
                shared = new SharedFd(owner, EventFd.create());
                sharedFds.put(owner, shared);
            }
            shared.refs++;
        }
        boolean success = false;
        try {
            ctx.setWaitFd(this, shared.eventFd.fd(), shared, (c, key, fd, data) -> releaseShared((SharedFd) data));
            success = true;
        } finally {
            if (!success) {
                releaseShared(shared);
            }
        }
        return shared.eventFd;
    }

    private void releaseShared(SharedFd shared) {
        synchronized (sharedFds) {
            if (--shared.refs > 0) {
                return;
            }
            sharedFds.remove(shared.loop, shared);
        }
        shared.eventFd.close();
    }

    /** The engine's side of one connection. Owner thread only. */
    private final class Session implements EngineSession {
        private final AsyncWaitCtx ctx;
        private final Executor owner;
        private PendingOperation current;

        Session(AsyncWaitCtx ctx, Executor owner) {
            this.ctx = ctx;
            this.owner = owner;
        }

        @Override
        public void submit(AsyncJob<byte[]> job, KeyOperation operation) {
            if (closed.get()) {
                job.fail(new IllegalStateException("engine '" + name + "' is closed"));
                return;
            }
            PendingOperation pending;
            AsyncWaitCtx.CallbackBinding binding = ctx.getCallbackBinding();
            if (binding != null) {
                pending = new PendingOperation(job, operation, binding.callback(), binding.arg(), null);
                ctx.setStatus(AsyncStatus.OK);
            } else {
                pending = new PendingOperation(job, operation, null, null, waitFdFor(ctx, owner));
            }
            if (offer(pending)) {
                current = pending;
            } else {
                current = null;
                ctx.setStatus(AsyncStatus.EAGAIN);
            }
        }

        @Override
        public void cancel(AsyncJob<byte[]> job) {
            PendingOperation pending = current;
            if (pending != null && pending.job() == job && job.state() != AsyncJob.State.FINISHED) {
                current = null;
                AbstractAsyncEngine.this.cancel(pending);
            }
        }

        @Override
        public void close() {
            current = null;
        }
    }
}
