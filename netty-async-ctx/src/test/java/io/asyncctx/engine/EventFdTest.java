package io.asyncctx.engine;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** EventFd on real Linux eventfds. */
@Timeout(60)
class EventFdTest {

    /** Open eventfds of this process (the JVM opens other fds lazily, such as /dev/random: not counted). */
    private static int openFds() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return (int) s.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().contains("eventfd");
                } catch (IOException e) {
                    return false; // the listing's own fd, closed meanwhile
                }
            }).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static boolean isOpen(int fd) {
        return Files.exists(Path.of("/proc/self/fd/" + fd));
    }

    @Test
    void shouldMakeFdReadableOnSignalAndDrainToEmpty() {
        try (EventFd e = EventFd.create()) {
            assertFalse(EventFd.drain(e.fd()), "a new eventfd has nothing pending");
            assertTrue(e.signal());
            assertTrue(e.signal());
            assertTrue(EventFd.drain(e.fd()), "two signals drain in one read");
            assertFalse(EventFd.drain(e.fd()), "draining an empty counter is not an error");
        }
    }

    @Test
    void shouldCountSignalsWhenDrainingWithCount() {
        java.nio.ByteBuffer scratch = java.nio.ByteBuffer.allocateDirect(8);
        try (EventFd e = EventFd.create()) {
            io.netty.channel.unix.FileDescriptor view = new io.netty.channel.unix.FileDescriptor(e.fd());
            assertEquals(0, EventFd.drainCount(view, scratch), "a new eventfd has nothing pending");
            for (int i = 0; i < 3; i++) {
                assertTrue(e.signal());
            }
            assertEquals(3, EventFd.drainCount(view, scratch), "three signals, one read");
            assertEquals(0, EventFd.drainCount(view, scratch));
            assertTrue(e.signal());
            assertEquals(1, EventFd.drainCount(view, scratch));
        }
    }

    @Test
    void shouldIgnoreSignalAfterCloseAndNotWriteToReusedFdNumber() {
        int before = openFds();
        EventFd a = EventFd.create();
        int number = a.fd();
        a.close();
        a.close(); // idempotent
        assertTrue(a.isClosed());
        assertEquals(before, openFds());
        EventFd b = EventFd.create(); // the kernel hands out the lowest free number: usually a's
        try {
            assertFalse(a.signal(), "signal after close reports false");
            assertFalse(EventFd.drain(b.fd()), "nothing was written to the fd that took the number "
                    + number + " (b=" + b.fd() + ")");
        } finally {
            b.close();
        }
        assertEquals(before, openFds());
    }

    @Test
    void shouldCloseOnceWhileAnotherThreadSignalsInALoop() throws Exception {
        String beforeList = describeFds();
        int before = openFds();
        for (int round = 0; round < 200; round++) {
            EventFd e = EventFd.create();
            int number = e.fd();
            AtomicBoolean stop = new AtomicBoolean();
            AtomicReference<Throwable> thrown = new AtomicReference<>();
            AtomicLong afterClose = new AtomicLong();
            Thread signaller = new Thread(() -> {
                try {
                    while (!stop.get()) {
                        if (!e.signal()) {
                            afterClose.incrementAndGet();
                        }
                    }
                } catch (Throwable t) {
                    thrown.set(t);
                }
            });
            signaller.start();
            Thread.onSpinWait();
            e.close();
            // A new fd very likely takes the same number: a second close of it, or a late write, would show below.
            EventFd next = EventFd.create();
            try {
                stop.set(true);
                signaller.join();
                assertNull(thrown.get(), "signal never throws");
                assertTrue(isOpen(next.fd()), "the fd that reused number " + number + " was not closed by us");
                assertFalse(EventFd.drain(next.fd()), "no signal reached the fd that reused number " + number);
                assertTrue(next.signal());
                assertTrue(EventFd.drain(next.fd()));
            } finally {
                next.close();
            }
        }
        assertEquals(before, openFds(), () -> beforeList + "\n" + describeFds());
    }

    private static String describeFds() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.map(p -> {
                try {
                    return p.getFileName() + "->" + Files.readSymbolicLink(p);
                } catch (IOException e) {
                    return p.getFileName() + "->?";
                }
            }).reduce("", (x, y) -> x + " " + y);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
