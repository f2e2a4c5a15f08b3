package io.asyncctx.engine;

import io.netty.channel.epoll.Native;
import io.netty.channel.unix.FileDescriptor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Threading: {@link #signal()} may be called from any thread at any time, also after {@link #close()}: then
 * it does nothing, and it never writes to a closed or reused fd number. {@link #drain(int)} is called by the thread
 * that waits on the fd (the event loop). {@link #close()} may be called from any thread, is idempotent and never
 * blocks: when a signal is in progress on another thread, the fd is closed by that thread as it finishes.
 *
 * <p>Owns one Linux eventfd (non-blocking, close-on-exec): the wait fd that an engine makes readable to resume a paused
 * job. This is the only class that touches {@code io.netty.channel.epoll.Native}.
 *
 * <p><b>Ownership.</b> Whoever creates the eventfd closes it, and only after the fd is no longer registered with any
 * event loop.
 */
public final class EventFd implements AutoCloseable {

    private static final long CLOSED = 1L << 62;

    private final FileDescriptor fd;
    private final int fdNumber;
    /** Bit 62: closed. Low bits: signals in progress. */
    private final AtomicLong state = new AtomicLong();

    private EventFd(FileDescriptor fd) {
        this.fd = fd;
        this.fdNumber = fd.intValue();
    }

    /**
     * Creates an eventfd.
     *
     * @throws IllegalStateException when the epoll native library is not available on this platform (eventfds need
     *     Linux; use the callback path instead)
     */
    public static EventFd create() {
        try {
            return new EventFd(Native.newEventFd());
        } catch (UnsatisfiedLinkError | NoClassDefFoundError | ExceptionInInitializerError e) {
            throw new IllegalStateException("eventfds need Linux and netty-transport-native-epoll (classifier "
                    + "linux-x86_64 or linux-aarch_64) on the class path; use the callback notification instead", e);
        }
    }

    /** The fd number, for {@link io.asyncctx.AsyncWaitCtx#setWaitFd}. */
    public int fd() {
        return fdNumber;
    }

    /**
     * Makes the fd readable (adds 1 to its counter). Any thread.
     *
     * @return false when the eventfd was closed (nothing was written)
     */
    public boolean signal() {
        long s;
        do {
            s = state.get();
            if ((s & CLOSED) != 0) {
                return false;
            }
        } while (!state.compareAndSet(s, s + 1));
        try {
            Native.eventFdWrite(fdNumber, 1L);
            return true;
        } catch (RuntimeException e) {
            return false; // only on counter overflow, which 2^64-2 signals cannot reach
        } finally {
            if (state.decrementAndGet() == CLOSED) {
                closeNow();
            }
        }
    }

    /** True once {@link #close()} was called. Any thread. */
    public boolean isClosed() {
        return (state.get() & CLOSED) != 0;
    }

    /** Closes the eventfd; later signals do nothing. Idempotent, any thread, never blocks. */
    @Override
    public void close() {
        long s;
        do {
            s = state.get();
            if ((s & CLOSED) != 0) {
                return;
            }
        } while (!state.compareAndSet(s, s | CLOSED));
        if (s == 0) {
            closeNow();
        }
    }

    private void closeNow() {
        try {
            fd.close();
        } catch (IOException ignored) {
            // The fd is gone either way; nothing else can use this number through us.
        }
    }

    /**
     * Reads an eventfd's counter to zero, on the thread that waits on it. An empty counter (EAGAIN) is not an error.
     *
     * @return true when the counter was non-zero (a signal was pending)
     */
    public static boolean drain(int fd) {
        try {
            Native.eventFdRead(fd);
            return true;
        } catch (RuntimeException e) {
            return false; // EAGAIN: nothing was pending
        }
    }

    /**
     * Reads an eventfd's counter to zero and returns it: the number of signals since the last read (each
     * {@link #signal()} adds one). For a waiter that accounts for its signals; {@link #drain(int)} when the number does
     * not matter.
     *
     * @param fd a view of the eventfd (not closed by this call)
     * @param scratch a direct buffer of at least 8 bytes, used by the calling thread only
     * @return the counter, 0 when nothing was pending (EAGAIN) or the read failed
     */
    public static long drainCount(FileDescriptor fd, ByteBuffer scratch) {
        try {
            int n = fd.read(scratch, 0, 8);
            return n == 8 ? scratch.order(ByteOrder.nativeOrder()).getLong(0) : 0;
        } catch (IOException e) {
            return 0; // the fd is going away; its registration is cancelled elsewhere
        }
    }

    @Override
    public String toString() {
        return "EventFd[" + fdNumber + (isClosed() ? ", closed]" : "]");
    }
}
