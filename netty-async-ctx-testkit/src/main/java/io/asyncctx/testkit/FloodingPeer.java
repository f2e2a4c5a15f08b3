package io.asyncctx.testkit;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * Threading: the methods are static and stateless; each uses only the socket it is given, from the calling thread
 * (a test's thread, never an event loop: {@link #flood} blocks in a selector while the socket is full).
 *
 * <p>The peer that floods a handshake, for tests that check a server's reads are held while its private-key operation
 * waits: after a real ClientHello it writes well-formed TLS application-data records of junk (16 KB each) as fast as
 * the socket takes them, and counts what the socket took. A server that holds its reads lets the kernel's buffers
 * fill, so the count stops growing at a few MB; one that does not takes hundreds of MB.
 */
public final class FloodingPeer {

    /** Bytes of one junk record: the 5-byte header and 16 KB of body. */
    private static final int RECORD = 5 + 16384;

    private FloodingPeer() {
    }

    /** Writes all of {@code bytes} to a socket in blocking mode (for the ClientHello). */
    public static void writeFully(SocketChannel ch, byte[] bytes) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /**
     * Switches the socket to non-blocking mode and writes junk records until {@code maxBytes} were taken,
     * {@code maxTime} passed, or the socket took nothing for {@code stall} (the server stopped reading and the kernel's
     * buffers are full; pass {@code maxTime} or more to flood for the whole time).
     *
     * @return the bytes the socket took
     */
    public static long flood(SocketChannel ch, long maxBytes, Duration maxTime, Duration stall)
            throws IOException, InterruptedException {
        Objects.requireNonNull(maxTime, "maxTime");
        Objects.requireNonNull(stall, "stall");
        if (maxBytes <= 0) {
            throw new IllegalArgumentException("maxBytes must be > 0, got " + maxBytes);
        }
        ch.configureBlocking(false);
        ByteBuffer chunk = ByteBuffer.allocateDirect(RECORD * 8);
        byte[] record = junkRecord();
        long total = 0;
        long start = System.nanoTime();
        long lastProgress = start;
        try (Selector writable = Selector.open()) {
            ch.register(writable, SelectionKey.OP_WRITE);
            while (total < maxBytes && System.nanoTime() - start < maxTime.toNanos()) {
                if (!chunk.hasRemaining() || chunk.position() == 0) {
                    chunk.clear();
                    while (chunk.remaining() >= record.length) {
                        chunk.put(record);
                    }
                    chunk.flip();
                }
                int n = ch.write(chunk);
                long now = System.nanoTime();
                if (n > 0) {
                    total += n;
                    lastProgress = now;
                } else if (now - lastProgress > stall.toNanos()) {
                    break;
                } else {
                    // The socket is full: wait until it takes more (the server read) or the stall window ends.
                    long waitNanos = Math.min(stall.toNanos() - (now - lastProgress),
                            maxTime.toNanos() - (now - start));
                    writable.select(Math.max(1, TimeUnit.NANOSECONDS.toMillis(waitNanos)));
                    writable.selectedKeys().clear();
                }
            }
        }
        return total;
    }

    /**
     * Reads and discards until the server closes or resets the connection.
     *
     * @return true when it did within {@code timeout}, false when the connection stayed open
     */
    public static boolean awaitClosedByServer(SocketChannel ch, Duration timeout) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
        long deadline = System.nanoTime() + timeout.toNanos();
        ch.configureBlocking(false);
        try (Selector sel = Selector.open()) {
            ch.register(sel, SelectionKey.OP_READ);
            while (System.nanoTime() < deadline) {
                sel.select(Math.max(1, Math.min(500, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()))));
                sel.selectedKeys().clear();
                try {
                    int n;
                    while ((n = ch.read(buf)) > 0) {
                        buf.clear();
                    }
                    if (n < 0) {
                        return true;
                    }
                } catch (IOException reset) {
                    return true;
                }
            }
        }
        return false;
    }

    /** A TLS 1.2-framed application-data record (type 23) of 16 KB junk, as a TLS 1.3 peer would frame it. */
    private static byte[] junkRecord() {
        byte[] record = new byte[RECORD];
        record[0] = 0x17;
        record[1] = 0x03;
        record[2] = 0x03;
        record[3] = 0x40;
        record[4] = 0x00;
        for (int i = 5; i < record.length; i++) {
            record[i] = (byte) (i * 31);
        }
        return record;
    }
}
