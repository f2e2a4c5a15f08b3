package io.asyncctx.examples;

import io.asyncctx.AsyncEngineException;
import io.asyncctx.netty.AsyncOffloadTimeoutException;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.ssl.NotSslRecordException;
import io.netty.handler.ssl.SslHandshakeTimeoutException;

import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.channels.ClosedChannelException;
import java.time.Instant;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The server's account of failed TLS handshakes: each is counted in {@code /metrics} by reason
 * ({@code server_handshakes_failed_total{reason="..."}}) and logged as one line with the peer and the reason, no stack
 * trace, at most {@link #LINES_PER_WINDOW} lines per {@link #WINDOW_NANOS 10-second window}; the failures beyond
 * that are summed up in one line when the window ends (at the next failure or report). nginx logs a failed handshake
 * at {@code info}, hidden by default; here {@code --failed-handshake-log off} hides the lines (the counters stay) and
 * {@code debug} adds the cause chain of engine failures.
 *
 * <p>Threading: thread-safe; {@link #failed} is called on the channels' event loops and never blocks for long (one
 * short lock around the window's bookkeeping and a line to stderr).
 */
final class FailedHandshakes {

    /** How much is logged. */
    enum Level {
        /** Nothing; the counters only. */
        OFF,
        /** One line per failure (rate-limited). */
        INFO,
        /** As INFO, and engine failures with their cause chain. */
        DEBUG;

        static Level parse(String s) {
            try {
                return valueOf(s.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new BadFlagException("--failed-handshake-log " + s + ": expected info, debug or off");
            }
        }
    }

    /** Why a handshake failed, as the metric's {@code reason} tag. */
    enum Reason {
        /** The client offered only TLS versions the server does not serve. */
        PROTOCOL_VERSION,
        /** No cipher suite (or group, or signature scheme) in common. */
        NO_SHARED_CIPHER,
        /** The bytes were not TLS (plain HTTP on the TLS port, a scanner). */
        NOT_TLS,
        /** The client sent no certificate where one is required. */
        CERTIFICATE_REQUIRED,
        /** The client's certificate was refused (unknown CA, expired, bad signature). */
        CERTIFICATE_REJECTED,
        /** The private-key operation failed in its engine (error, deadline, no engine left). */
        ENGINE,
        /** The handshake did not finish within the handshake timeout. */
        TIMEOUT,
        /** The peer closed or reset the connection mid-handshake. */
        PEER_CLOSED,
        /** Anything else: malformed messages, alerts from the peer. */
        OTHER;

        String tag() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** The longest description in a line (a NotSslRecordException carries the record in hex). */
    static final int MAX_DESCRIPTION = 160;

    /** Lines logged per window at most. */
    static final int LINES_PER_WINDOW = 20;
    /** The window of the rate limit. */
    static final long WINDOW_NANOS = 10_000_000_000L;

    private final Level level;
    private final PrintStream out;
    private final Map<Reason, Counter> counters = new EnumMap<>(Reason.class);
    private final Map<Reason, AtomicLong> totals = new EnumMap<>(Reason.class);
    private long windowStart = System.nanoTime();
    private int linesInWindow;
    private final Map<Reason, Long> suppressed = new EnumMap<>(Reason.class);

    FailedHandshakes(Level level, MeterRegistry registry, PrintStream out) {
        this.level = level;
        this.out = out;
        for (Reason r : Reason.values()) {
            counters.put(r, Counter.builder("server.handshakes.failed").tag("reason", r.tag())
                    .description("TLS handshakes that failed, by reason").register(registry));
            totals.put(r, new AtomicLong());
        }
    }

    /** Counts and (rate-limited) logs one failed handshake. */
    void failed(SocketAddress peer, Throwable cause) {
        Reason reason = classify(cause);
        counters.get(reason).increment();
        totals.get(reason).incrementAndGet();
        if (level == Level.OFF) {
            return;
        }
        String line = null;
        String summary;
        synchronized (this) {
            summary = rollWindow(System.nanoTime());
            if (linesInWindow < LINES_PER_WINDOW) {
                linesInWindow++;
                line = Instant.now() + " handshake failed: peer " + address(peer) + ", " + reason.tag() + ": "
                        + switch (reason) {
                            case PEER_CLOSED -> "the peer closed the connection during the handshake";
                            case NOT_TLS -> "the first bytes are not a TLS record (plain HTTP on the TLS port?)";
                            default -> describe(cause);
                        };
            } else {
                suppressed.merge(reason, 1L, Long::sum);
            }
        }
        if (summary != null) {
            out.println(summary);
        }
        if (line != null) {
            out.println(line);
            if (level == Level.DEBUG && reason == Reason.ENGINE) {
                cause.printStackTrace(out);
            }
        }
    }

    /** Prints the summary of a window that has ended with suppressed lines, if any (at shutdown). */
    void flushSummary() {
        String summary;
        synchronized (this) {
            summary = rollWindow(System.nanoTime() + WINDOW_NANOS);
        }
        if (summary != null) {
            out.println(summary);
        }
    }

    /** Failures counted for a reason since start. */
    long count(Reason reason) {
        return totals.get(reason).get();
    }

    /** Starts a new window when the current one is over; returns the old window's summary line, or null. */
    private String rollWindow(long now) {
        if (now - windowStart < WINDOW_NANOS) {
            return null;
        }
        windowStart = now;
        linesInWindow = 0;
        if (suppressed.isEmpty()) {
            return null;
        }
        long n = suppressed.values().stream().mapToLong(Long::longValue).sum();
        StringBuilder b = new StringBuilder(Instant.now() + " handshake failed: " + n
                + " more not logged in the last 10 s (at most " + LINES_PER_WINDOW + " lines per 10 s):");
        suppressed.forEach((r, c) -> b.append(' ').append(r.tag()).append('=').append(c));
        suppressed.clear();
        return b.toString();
    }

    /** The reason of a handshake failure, from its exception and causes. */
    static Reason classify(Throwable cause) {
        StringBuilder messages = new StringBuilder();
        for (Throwable t = cause; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof NotSslRecordException) {
                return Reason.NOT_TLS;
            }
            if (t instanceof SslHandshakeTimeoutException) {
                return Reason.TIMEOUT;
            }
            if (t instanceof AsyncEngineException || t instanceof AsyncOffloadTimeoutException) {
                return Reason.ENGINE;
            }
            if (t instanceof ClosedChannelException) {
                return Reason.PEER_CLOSED;
            }
            messages.append(t.getMessage()).append('\n');
        }
        String m = messages.toString().toUpperCase(Locale.ROOT);
        if (m.contains("UNSUPPORTED_PROTOCOL") || m.contains("PROTOCOL_VERSION") || m.contains("WRONG_VERSION")) {
            return Reason.PROTOCOL_VERSION;
        }
        if (m.contains("NO_SHARED_CIPHER") || m.contains("NO_SHARED_GROUP") || m.contains("NO_COMMON_SIGNATURE")) {
            return Reason.NO_SHARED_CIPHER;
        }
        if (m.contains("CERTIFICATE_REQUIRED") || m.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE")) {
            return Reason.CERTIFICATE_REQUIRED;
        }
        if (m.contains("CERTIFICATE") || m.contains("CERTPATH") || m.contains("PKIX") || m.contains("VALIDATOR")) {
            return Reason.CERTIFICATE_REJECTED;
        }
        if (m.contains("PRIVATE_KEY_OPERATION_FAILED")) {
            return Reason.ENGINE;
        }
        if (m.contains("CONNECTION RESET") || m.contains("BROKEN PIPE") || m.contains("CLOSED")) {
            return Reason.PEER_CLOSED;
        }
        return Reason.OTHER;
    }

    /** host:port without InetSocketAddress's leading slash. */
    static String address(SocketAddress peer) {
        return peer instanceof InetSocketAddress a ? a.getHostString() + ":" + a.getPort() : String.valueOf(peer);
    }

    /** A short description: the innermost message, one line, at most {@value #MAX_DESCRIPTION} characters. */
    static String describe(Throwable cause) {
        Throwable t = cause;
        while (t instanceof DecoderException && t.getCause() != null) {
            t = t.getCause();
        }
        Throwable root = t;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String m = root == t ? String.valueOf(t.getMessage())
                : t.getMessage() + " (" + root.getClass().getSimpleName() + ": " + root.getMessage() + ")";
        m = m.replace('\n', ' ').replace('\r', ' ');
        return m.length() <= MAX_DESCRIPTION ? m : m.substring(0, MAX_DESCRIPTION - 3) + "...";
    }
}
