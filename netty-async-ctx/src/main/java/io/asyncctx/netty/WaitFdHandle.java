package io.asyncctx.netty;

import io.netty.channel.IoEvent;
import io.netty.channel.IoRegistration;
import io.netty.channel.epoll.EpollIoHandle;
import io.netty.channel.epoll.EpollIoOps;
import io.netty.channel.uring.IoUringIoEvent;
import io.netty.channel.uring.IoUringIoHandle;
import io.netty.channel.uring.IoUringIoOps;
import io.netty.channel.unix.FileDescriptor;

import java.util.ArrayList;

/**
 * One registration of one wait fd with an event loop. Subclasses speak epoll or io_uring.
 *
 * <p><b>Threading.</b> Loop thread only: Netty calls {@link #handle}, {@link #unregistered()} and {@link #close()} on
 * the loop, and the registry calls {@link #start} and {@link #cancel()} there.
 */
abstract class WaitFdHandle implements io.netty.channel.IoHandle {

    final WaitFdRegistry registry;
    final WaitFdRegistry.Entry entry;
    /** Connections that released this fd and wait for {@link #unregistered()} before closing their ctx. */
    final ArrayList<AsyncOffloadConnection> closeWaiters = new ArrayList<>(1);
    IoRegistration registration;
    boolean cancelled;
    /** start() failed: the registry reports that to the caller and must not register the fd again. */
    boolean startFailed;

    WaitFdHandle(WaitFdRegistry registry, WaitFdRegistry.Entry entry) {
        this.registry = registry;
        this.entry = entry;
    }

    /** Starts polling the fd through {@code registration}. */
    abstract void start(IoRegistration registration);

    /** Stops polling and cancels the registration; {@link #unregistered()} follows. Idempotent. */
    void cancel() {
        if (cancelled) {
            return;
        }
        cancelled = true;
        beforeCancel();
        if (registration != null) {
            registration.cancel();
        }
    }

    void beforeCancel() {
    }

    @Override
    public final void unregistered() {
        registry.onUnregistered(this);
    }

    /** Netty closes every handle of a loop that shuts down: stop registering anything on it. */
    @Override
    public final void close() {
        registry.shutdown();
        cancel();
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[fd=" + entry.fd + (cancelled ? ", cancelled]" : "]");
    }

    /** epoll: the fd is added to the loop's epoll set with EPOLLIN (level triggered) by the first submit. */
    static final class Epoll extends WaitFdHandle implements EpollIoHandle {
        private final FileDescriptor fd;

        Epoll(WaitFdRegistry registry, WaitFdRegistry.Entry entry) {
            super(registry, entry);
            // A view of the engine's fd; never closed through this object (the ctx's cleanup closes the fd).
            this.fd = new FileDescriptor(entry.fd);
        }

        @Override
        public FileDescriptor fd() {
            return fd;
        }

        @Override
        void start(IoRegistration registration) {
            this.registration = registration;
            registration.submit(EpollIoOps.EPOLLIN);
        }

        @Override
        public void handle(IoRegistration registration, IoEvent ioEvent) {
            if (!cancelled) {
                registry.onReadable(entry);
            }
        }
    }

    /**
     * io_uring: a one-shot POLL_ADD (POLLIN) re-armed after each completion; cancelled with ASYNC_CANCEL before the
     * registration is cancelled, or the registration would wait for the poll forever and never unregister.
     */
    static final class IoUring extends WaitFdHandle implements IoUringIoHandle {
        private static final byte OP_POLL_ADD = 6;
        private static final byte OP_ASYNC_CANCEL = 14;
        private static final int POLLIN = 0x0001;
        private static final long POLL_DATA = 1;
        private static final long CANCEL_DATA = 2;

        private boolean armed;
        private long pollId;

        IoUring(WaitFdRegistry registry, WaitFdRegistry.Entry entry) {
            super(registry, entry);
        }

        @Override
        void start(IoRegistration registration) {
            this.registration = registration;
            arm();
        }

        private void arm() {
            pollId = registration.submit(new IoUringIoOps(OP_POLL_ADD, (byte) 0, (short) 0, entry.fd, 0L, 0L, 0,
                    POLLIN, POLL_DATA, (short) 0, (short) 0, 0, 0L));
            armed = true;
        }

        @Override
        void beforeCancel() {
            if (armed && registration != null) {
                registration.submit(new IoUringIoOps(OP_ASYNC_CANCEL, (byte) 0, (short) 0, -1, 0L, pollId, 0, 0,
                        CANCEL_DATA, (short) 0, (short) 0, 0, 0L));
            }
        }

        @Override
        public void handle(IoRegistration registration, IoEvent ioEvent) {
            IoUringIoEvent event = (IoUringIoEvent) ioEvent;
            if (event.opcode() != OP_POLL_ADD) {
                return; // the ASYNC_CANCEL's own completion
            }
            armed = false;
            if (cancelled) {
                return;
            }
            int res = event.res();
            if (res < 0) {
                // The poll failed (not cancelled by us): the registry re-creates the registration a bounded number of
                // times, then fails the waiters; never re-armed here, so a broken fd cannot spin the loop.
                registry.onPollFailed(this, res);
                return;
            }
            registry.onReadable(entry);
            if (!cancelled) {
                arm();
            }
        }
    }
}
