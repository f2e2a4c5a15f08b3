package io.asyncctx.examples;

import java.time.Duration;
import java.util.Objects;

/**
 * How the example server treats connections over time: how long a handshake may take, how long an established
 * connection may stay idle, how long a graceful shutdown may wait for what is in flight, and what it logs about failed
 * handshakes. The defaults follow nginx where it has one: {@code keepalive_timeout 75s}; the handshake timeout is
 * Netty's 10 s; the shutdown grace is 30 s (nginx's {@code worker_shutdown_timeout} is unset, that is unbounded, by
 * default; 30 s is what an orchestrator such as Kubernetes waits before SIGKILL).
 *
 * <p>Threading: immutable.
 *
 * @param handshakeTimeout a handshake not done by then is closed (counted as {@code timeout})
 * @param idleTimeout an established connection with no request in flight and no bytes either way for this long is
 *     closed (HTTP/2: GOAWAY first)
 * @param shutdownGrace after SIGTERM, the longest wait for in-flight handshakes and requests; zero for no bound
 * @param failedHandshakeLog what is logged about failed handshakes
 */
record ServerPolicy(Duration handshakeTimeout, Duration idleTimeout, Duration shutdownGrace,
                    FailedHandshakes.Level failedHandshakeLog) {

    /** Validates. */
    ServerPolicy {
        Objects.requireNonNull(failedHandshakeLog, "failedHandshakeLog");
        if (handshakeTimeout.isNegative() || handshakeTimeout.isZero()) {
            throw new IllegalArgumentException("--handshake-timeout " + handshakeTimeout.toSeconds()
                    + ": expected more than 0 seconds");
        }
        if (idleTimeout.isNegative() || idleTimeout.isZero()) {
            throw new IllegalArgumentException("--idle-timeout " + idleTimeout.toSeconds()
                    + ": expected more than 0 seconds");
        }
        if (shutdownGrace.isNegative()) {
            throw new IllegalArgumentException("--shutdown-grace " + shutdownGrace.toSeconds()
                    + ": expected 0 (no bound) or more seconds");
        }
    }

    /** Handshake timeout 10 s, idle timeout 75 s, shutdown grace 30 s, failed handshakes logged at info. */
    static ServerPolicy defaults() {
        return new ServerPolicy(Duration.ofSeconds(10), Duration.ofSeconds(75), Duration.ofSeconds(30),
                FailedHandshakes.Level.INFO);
    }
}
