package io.asyncctx.netty;

import io.asyncctx.engine.EventFd;
import io.netty.channel.unix.FileDescriptor;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.util.concurrent.Future;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The wait fds of one event loop: one {@link IoRegistration} per fd, reference counted by the connections that wait
 * on it (several ctxs may share one engine eventfd). A readable fd is drained and every connection whose job has a
 * completion pending is resumed; the others stay paused. The completing thread queues its connection (the job's
 * resume listener) before it signals, so a wake-up costs one step per completion, not one per waiter.
 *
 * <p><b>One ready queue per fd.</b> A connection that waits on one fd (the usual case: its engine's) is queued on that
 * fd's own queue, so a wake-up of one fd takes only completions signalled on it. A connection whose paused job may be
 * signalled on any of several fds (a ctx holding a primary's and a fallback's fd), or whose fds changed in the run that
 * paused and are not yet applied, is queued on the loop's shared queue, which every wake-up also takes (in OpenSSL's
 * model any of a ctx's fds may signal). Signals are accounted per fd the same way: a completion taken is a signal owed
 * by its fd; a wake-up that resumes nothing and drains more than its fd owes is spurious.
 *
 * <p><b>Threading.</b> Loop thread only, except {@link #registeredCount()} (any thread, volatile).
 *
 * <p><b>Teardown.</b> When the last connection releases an fd its registration is cancelled; a connection that wants
 * to close its ctx (which closes the fd) waits until {@code unregistered()} has run for every registration it released
 * ({@link AsyncOffloadConnection#onUnregistered()}). An fd acquired again while its old registration is still being
 * cancelled is registered anew once the old one is gone (the loop keys registrations by fd number).
 */
final class WaitFdRegistry {

    /** Which kind of handle this loop takes. */
    enum Kind {
        EPOLL, IO_URING, NONE
    }

    /** One fd number: who waits on it and its current registration. */
    static final class Entry {
        final int fd;
        /** A view of the fd for reading its counter; never closed through this object. */
        final FileDescriptor view;
        final LinkedHashSet<AsyncOffloadConnection> waiters = new LinkedHashSet<>();
        /**
         * Connections whose paused job has a completion that will be signalled on this fd, queued by the completing
         * thread before it signals. Many producers (engine threads), one consumer (the loop).
         */
        final ConcurrentLinkedQueue<AsyncOffloadConnection> ready = new ConcurrentLinkedQueue<>();
        /**
         * Completions taken (from a queue, or finished before they paused) whose signal on this fd may still arrive.
         * Loop thread.
         */
        long owedSignals;
        /** False once the entry has left the registry (no waiter left). Loop thread. */
        boolean live = true;
        /** The live or cancelling registration, null when none. */
        WaitFdHandle handle;
        /** io_uring: polls of this fd that failed in a row (0 after a poll that succeeded, or a fresh registration). */
        int pollFailures;

        Entry(int fd) {
            this.fd = fd;
            this.view = new FileDescriptor(fd);
        }
    }

    private final IoEventLoop loop;
    /** The loop's handshake budget per turn, or null (then every resume runs at once). */
    private final HandshakeTurns turns;
    private final Kind kind;
    private final Map<Integer, Entry> entries = new HashMap<>();
    /**
     * Connections whose completion may be signalled on any of their fds (see the class comment), queued by the
     * completing thread before it signals; every wake-up takes them. Many producers, one consumer (the loop).
     */
    private final ConcurrentLinkedQueue<AsyncOffloadConnection> sharedReady = new ConcurrentLinkedQueue<>();
    /** io_uring: how many times a registration whose poll failed is re-created before its waiters are failed. */
    static final int MAX_POLL_RETRIES = 3;

    private volatile int registered;
    /** Registrations re-created after a failed poll. Loop thread. */
    private long pollRetries;
    private long readableEvents;
    /** Reads the eventfd counters (loop thread only). */
    private final ByteBuffer counter = ByteBuffer.allocateDirect(8);
    /**
     * Completions taken whose signal may arrive on any fd: those of connections waiting on several fds (or none left),
     * and those owed by an fd whose entry has left. Any wake-up may settle them; see {@link Entry#owedSignals}.
     */
    private long looseOwedSignals;
    private long spuriousWakeups;
    /** Resumes over the loop's handshake budget, run in a later turn. Loop thread. */
    private long deferredResumes;
    private boolean shuttingDown;

    WaitFdRegistry(IoEventLoop loop, HandshakeTurns turns) {
        this.loop = loop;
        this.turns = turns;
        this.kind = kindOf(loop);
    }

    static Kind kindOf(IoEventLoop loop) {
        try {
            if (loop.isCompatible(WaitFdHandle.Epoll.class)) {
                return Kind.EPOLL;
            }
        } catch (LinkageError ignored) {
            // epoll classes absent: not an epoll loop
        }
        try {
            if (loop.isCompatible(WaitFdHandle.IoUring.class)) {
                return Kind.IO_URING;
            }
        } catch (LinkageError ignored) {
            // io_uring classes absent: not an io_uring loop
        }
        return Kind.NONE;
    }

    Kind kind() {
        return kind;
    }

    boolean supportsFds() {
        return kind != Kind.NONE;
    }

    /** Live registrations (registered and not yet unregistered). Any thread. */
    int registeredCount() {
        return registered;
    }

    /** Fd numbers with a live or cancelling registration. Loop thread; for tests. */
    int[] registeredFds() {
        return entries.values().stream().filter(e -> e.handle != null).mapToInt(e -> e.fd).sorted().toArray();
    }

    /** Resumes over the loop's handshake budget that were run in a later turn. Loop thread; for tests. */
    long deferredResumes() {
        return deferredResumes;
    }

    /** How many times a wait fd of this loop turned readable. Loop thread. */
    long readableEvents() {
        return readableEvents;
    }

    /** Wake-ups that drained a signal no completion accounts for and resumed nothing. Loop thread. */
    long spuriousWakeups() {
        return spuriousWakeups;
    }

    /**
     * A job finished before it paused; its engine will still signal {@code e}'s fd (null: one of several fds). Loop
     * thread.
     */
    void expectSignal(Entry e) {
        owe(e);
    }

    private void owe(Entry e) {
        if (e != null && e.live) {
            e.owedSignals++;
        } else {
            looseOwedSignals++;
        }
    }

    /** The live entry of {@code fd}, or null when no connection waits on it. Loop thread. */
    Entry entry(int fd) {
        return entries.get(fd);
    }

    /** {@code e} leaves the registry: what its fd still owes may be drained by a later registration of the fd. */
    private void removeEntry(Entry e) {
        if (entries.remove(e.fd, e)) {
            e.live = false;
            looseOwedSignals += e.owedSignals;
            e.owedSignals = 0;
        }
    }

    /** The number of connections waiting on {@code fd}. Loop thread; for tests. */
    int waiters(int fd) {
        Entry e = entries.get(fd);
        return e == null ? 0 : e.waiters.size();
    }

    /**
     * Adds {@code conn} to the waiters of {@code fd}, registering the fd with the loop when it is the first.
     *
     * @return null on success, or why the fd could not be registered
     */
    Throwable acquire(AsyncOffloadConnection conn, int fd) {
        Entry e = entries.get(fd);
        if (e == null) {
            e = new Entry(fd);
            entries.put(fd, e);
        }
        if (!e.waiters.add(conn)) {
            return null;
        }
        if (e.handle == null) {
            e.pollFailures = 0; // a new waiter gets fresh attempts, even on an fd whose polls failed before
            Throwable failure = register(e);
            if (failure != null) {
                e.waiters.remove(conn);
                if (e.waiters.isEmpty() && e.handle == null) {
                    removeEntry(e);
                }
                return failure;
            }
        }
        // A cancelling handle: onUnregistered registers the fd again since it has waiters.
        return null;
    }

    /**
     * Removes {@code conn} from the waiters of {@code fd}; cancels the registration when it was the last. When the
     * registration was cancelled (or was being cancelled), this returns true and {@code conn} is told exactly once,
     * through {@link AsyncOffloadConnection#onUnregistered()}, when it is gone (possibly before this returns).
     */
    boolean release(AsyncOffloadConnection conn, int fd) {
        Entry e = entries.get(fd);
        if (e == null || !e.waiters.remove(conn)) {
            return false;
        }
        if (!e.waiters.isEmpty()) {
            return false;
        }
        WaitFdHandle h = e.handle;
        if (h == null) {
            removeEntry(e);
            return false;
        }
        // Told once the registration is gone; with epoll that happens inside cancel(), before this returns.
        h.closeWaiters.add(conn);
        h.cancel();
        return true;
    }

    /** The loop is shutting down: no new registrations. Loop thread. */
    void shutdown() {
        shuttingDown = true;
        for (Entry e : new ArrayList<>(entries.values())) {
            if (e.handle != null) {
                e.handle.cancel();
            }
        }
    }

    private Throwable register(Entry e) {
        if (shuttingDown || loop.isShuttingDown()) {
            return new IllegalStateException("event loop is shutting down; cannot wait on fd " + e.fd);
        }
        WaitFdHandle h = kind == Kind.EPOLL ? new WaitFdHandle.Epoll(this, e) : new WaitFdHandle.IoUring(this, e);
        Future<IoRegistration> f = loop.register(h);
        if (!f.isDone()) {
            // register() completes inline on the loop thread; anything else is a bug in our threading.
            return new IllegalStateException("register(" + e.fd + ") did not complete on the loop thread");
        }
        if (!f.isSuccess()) {
            return f.cause();
        }
        e.handle = h;
        registered++;
        try {
            h.start(f.getNow());
        } catch (RuntimeException ex) {
            e.handle = null; // start failed: the handle cancels itself; unregistered() is ignored for a stale handle
            h.startFailed = true; // and must not re-register (epoll's cancel() runs unregistered() right here)
            h.cancel();
            return ex;
        }
        return null;
    }

    /**
     * Any thread (the completing engine thread): {@code c}'s paused job has a completion, to be signalled on
     * {@code e}'s fd (null: on one of several fds, or fds not yet applied); the signal follows.
     */
    void markReady(AsyncOffloadConnection c, Entry e) {
        (e != null ? e.ready : sharedReady).offer(c);
    }

    /**
     * Drops {@code c}'s entries from the ready queues it can be on: that of {@code e} (the fd it waits on, or null)
     * and the shared one. It has closed and needs no resume. Loop thread. Costs one pass over those queues, which hold
     * only completions the loop has not taken yet. Each entry's fd signal is still to come (or has come): it is owed,
     * not spurious.
     */
    void dropReady(AsyncOffloadConnection c, Entry e) {
        if (e != null) {
            while (e.ready.remove(c)) {
                owe(e);
            }
        }
        while (sharedReady.remove(c)) {
            owe(e);
        }
    }

    /** Connections queued for the next wake-ups, over every fd and the shared queue. Loop thread; for tests. */
    int readyCount() {
        int n = sharedReady.size();
        for (Entry e : entries.values()) {
            n += e.ready.size();
        }
        return n;
    }

    /**
     * The fd of {@code e} turned readable: drain it and resume every connection queued on it (and on the shared
     * queue). The cost is one step per completion, not per waiter: with one eventfd shared by 10,000 paused
     * connections, a wake-up for one completion touches one connection; a wake-up of another fd touches none of them.
     * With a handshake budget per turn ({@link OffloadConfig#handshakeStepsPerLoopTurn()}), a resume over the budget
     * is taken from the queue all the same (so the signal accounting is the same as without) and run in a later turn
     * ({@link HandshakeTurns}). Loop thread.
     */
    void onReadable(Entry e) {
        readableEvents++;
        e.pollFailures = 0;
        long signals = EventFd.drainCount(e.view, counter);
        int resumed = take(e.ready) + take(sharedReady);
        long matched = Math.min(signals, e.owedSignals);
        e.owedSignals -= matched;
        signals -= matched;
        long loose = Math.min(signals, looseOwedSignals);
        looseOwedSignals -= loose;
        signals -= loose;
        if (resumed == 0 && signals > 0) {
            spuriousWakeups++;
            // Recorded against a waiter of the fd (its engine's meters); none when the last one has just left.
            java.util.Iterator<AsyncOffloadConnection> it = e.waiters.iterator();
            if (it.hasNext()) {
                it.next().onSpuriousWakeup();
            }
        }
    }

    /** Takes every connection queued on {@code queue}, resuming (or deferring) those that can resume. */
    private int take(Queue<AsyncOffloadConnection> queue) {
        int resumed = 0;
        for (AsyncOffloadConnection c; (c = queue.poll()) != null; ) {
            owe(c.signalEntry());
            HandshakeTurns.Step step = c.turnStep();
            if (step == null || turns == null) {
                if (c.resumeIfReady()) {
                    resumed++;
                }
            } else if (c.canResume()) {
                // Counted as resumed now whether it runs now or in a later turn: this wake-up took its completion.
                resumed++;
                if (turns.admit(step.limit)) {
                    c.resumeIfReady();
                } else {
                    deferredResumes++;
                    turns.defer(step);
                }
            }
        }
        return resumed;
    }

    /** Registrations re-created after a failed poll on this loop. Loop thread. */
    long pollRetries() {
        return pollRetries;
    }

    /**
     * An io_uring poll of {@code h}'s fd failed with {@code -errno}. The registration is dead: it is cancelled, and
     * re-created once it has left the loop ({@link #onUnregistered}), up to {@link #MAX_POLL_RETRIES} times in a row;
     * then its waiters are failed with the cause, and the fd is registered anew only for a new waiter. Either way no
     * connection joins the dead registration. Loop thread.
     */
    void onPollFailed(WaitFdHandle h, int res) {
        Entry e = h.entry;
        if (e.handle != h) {
            return; // a stale handle
        }
        e.pollFailures++;
        if (e.pollFailures <= MAX_POLL_RETRIES) {
            pollRetries++;
            h.cancel(); // onUnregistered registers the fd again for its waiters
            return;
        }
        h.cancel();
        Throwable failure = new java.io.IOException("polling wait fd " + e.fd + " failed " + e.pollFailures
                + " times in a row (last errno " + (-res) + "), registration re-created " + MAX_POLL_RETRIES
                + " times; the engine's fd is unusable (check the engine, or use Notify.CALLBACK)");
        for (AsyncOffloadConnection c : new ArrayList<>(e.waiters)) {
            c.onWaitFdFailed(e.fd, failure);
        }
    }

    /** {@code h} has been removed from the loop. Loop thread. */
    void onUnregistered(WaitFdHandle h) {
        registered--;
        if (h.startFailed) {
            return; // register() returns the failure to acquire(), which fails that operation; never retried here
        }
        if (!h.cancelled || loop.isShuttingDown()) {
            shuttingDown = true; // Netty removed it on its own: the loop is shutting down, register nothing more
        }
        Entry e = h.entry;
        if (e.handle == h) {
            e.handle = null;
        }
        ArrayList<AsyncOffloadConnection> closers = h.closeWaiters.isEmpty() ? null : new ArrayList<>(h.closeWaiters);
        h.closeWaiters.clear();
        if (e.handle == null) {
            if (e.waiters.isEmpty()) {
                removeEntry(e);
            } else if (!shuttingDown && e.pollFailures <= MAX_POLL_RETRIES) {
                Throwable failure = register(e);
                if (failure != null) {
                    for (AsyncOffloadConnection c : new ArrayList<>(e.waiters)) {
                        c.onWaitFdFailed(e.fd, failure);
                    }
                }
            }
        }
        if (closers != null) {
            for (AsyncOffloadConnection c : closers) {
                c.onUnregistered();
            }
        }
    }

    @Override
    public String toString() {
        return "WaitFdRegistry[" + kind + ", fds=" + entries.size() + ", registered=" + registered + ']';
    }
}
