package io.asyncctx.examples;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.AttributeKey;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The example server's accepted connections, for its graceful shutdown: each has a {@link ConnectionGuard} (its
 * phase, its requests in flight); {@link #startDrain()} asks every one to finish what it has and close
 * ({@link ConnectionGuard#drain()}); {@link #awaitClosed} waits until all are closed or the grace period ends;
 * {@link #closeAll()} closes what is left at once. Also counts the requests received and answered.
 *
 * <p>Threading: thread-safe. {@link #register} runs on the new channel's event loop; {@link #startDrain},
 * {@link #awaitClosed} and {@link #closeAll} on any thread that may block (the shutdown thread), never an event loop
 * ({@link #awaitClosed} blocks).
 */
final class Connections {

    private static final AttributeKey<ConnectionGuard> GUARD = AttributeKey.valueOf("io.asyncctx.examples.guard");

    private final ServerPolicy policy;
    private final FailedHandshakes failures;
    private final Set<Channel> open = ConcurrentHashMap.newKeySet();
    private final AtomicLong requests = new AtomicLong();
    private final AtomicLong answered = new AtomicLong();
    private volatile boolean draining;

    Connections(ServerPolicy policy, FailedHandshakes failures) {
        this.policy = policy;
        this.failures = failures;
    }

    ServerPolicy policy() {
        return policy;
    }

    FailedHandshakes failures() {
        return failures;
    }

    /** Tracks a newly accepted channel until it closes; its guard. On the channel's event loop. */
    ConnectionGuard register(Channel ch) {
        ConnectionGuard guard = new ConnectionGuard(this);
        ch.attr(GUARD).set(guard);
        open.add(ch);
        ch.closeFuture().addListener(f -> {
            open.remove(ch);
            synchronized (open) {
                open.notifyAll();
            }
        });
        if (draining) {
            guard.markDraining(); // accepted just before the listener closed: drain it too, once it is set up
        }
        return guard;
    }

    /** The guard of a connection, or of the connection of an HTTP/2 stream; null if none. */
    static ConnectionGuard guard(Channel ch) {
        Channel c = ch instanceof Http2StreamChannel ? ch.parent() : ch;
        return c == null ? null : c.attr(GUARD).get();
    }

    /** True once the server drains (its responses then carry {@code Connection: close}). */
    boolean draining() {
        return draining;
    }

    /** Asks every connection to finish what is in flight and close. Any thread. */
    void startDrain() {
        draining = true;
        for (Channel ch : open) {
            ConnectionGuard g = ch.attr(GUARD).get();
            if (g != null) {
                ch.eventLoop().execute(g::drain);
            }
        }
    }

    /**
     * Waits until every connection has closed, at most {@code timeoutNanos} (0 for no bound). Blocks: never on an event
     * loop. True if all closed.
     */
    boolean awaitClosed(long timeoutNanos) throws InterruptedException {
        long deadline = System.nanoTime() + timeoutNanos;
        synchronized (open) {
            while (!open.isEmpty()) {
                if (timeoutNanos == 0) {
                    open.wait(1000); // re-checked when a channel closes (notifyAll) or each second
                    continue;
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                TimeUnit.NANOSECONDS.timedWait(open, left);
            }
        }
        return true;
    }

    /** Closes every connection at once (grace period over, or a second signal). Any thread. */
    void closeAll() {
        for (Channel ch : open) {
            // From the head: past the HTTP/2 codec, whose own close would wait for the streams again.
            ChannelHandlerContext first = ch.pipeline().firstContext();
            if (first != null) {
                first.close();
            } else {
                ch.close();
            }
        }
    }

    /** Connections open now (handshaking, busy or idle). */
    int openCount() {
        return open.size();
    }

    void requestReceived() {
        requests.incrementAndGet();
    }

    void requestAnswered() {
        answered.incrementAndGet();
    }

    /** Requests received since start. */
    long requests() {
        return requests.get();
    }

    /** Requests whose response was written to the socket since start. */
    long answered() {
        return answered.get();
    }
}
