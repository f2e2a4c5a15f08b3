package io.asyncctx.netty;

import io.asyncctx.AsyncJobPool;
import io.asyncctx.engine.AsyncEngine;
import io.netty.channel.IoEventLoop;
import io.netty.util.concurrent.SingleThreadEventExecutor;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What the offload keeps per event loop: its job pools (one per {@link OffloadConfig#maxJobsPerLoop()} value in use,
 * normally one), its wait-fd registry, its handshake budget per turn ({@link HandshakeTurns}) and its open
 * connections. Found through a map keyed by loop; removed when the
 * loop terminates.
 *
 * <p><b>Threading.</b> Created and changed on the loop's thread only. The counters ({@link #openConnections},
 * {@link WaitFdRegistry#registeredCount()}, the operation counters) are volatile, written by the loop only and may be
 * read from any thread; the pool gauges ({@link AsyncJobPool#inFlight()}, {@link AsyncJobPool#waiting()}) are
 * published by the loop with release stores and may be read from any thread too.
 *
 * <p><b>Shutdown.</b> When the loop shuts down, a shutdown hook (on the loop) closes every open connection: their jobs
 * are abandoned, their promises fail, their fds are released and their ctxs closed. Anything left when the loop has
 * terminated (the hook could not be installed) is closed by the termination listener.
 */
final class LoopState {

    private static final ConcurrentHashMap<IoEventLoop, LoopState> STATES = new ConcurrentHashMap<>();

    final IoEventLoop loop;
    final WaitFdRegistry registry;
    /** The handshake budget of this loop's turns; null when the loop has no end-of-iteration hook. */
    final HandshakeTurns turns;
    private final ConcurrentHashMap<Integer, AsyncJobPool> pools = new ConcurrentHashMap<>(2);
    private final LinkedHashSet<AsyncOffloadConnection> connections = new LinkedHashSet<>();
    /** Closed connections whose ctx waits for its fds' registrations to be removed. */
    private final LinkedHashSet<AsyncOffloadConnection> closing = new LinkedHashSet<>();
    private volatile int openConnections;
    private boolean shutDown;
    /** Health of the primary engines used on this loop (consecutive failures, when to skip them). */
    private final IdentityHashMap<AsyncEngine, EngineHealth> health = new IdentityHashMap<>(2);
    private final IdentityHashMap<OffloadMetrics, IdentityHashMap<AsyncEngine, OffloadMetrics.Recorder>> recorders =
            new IdentityHashMap<>(2);

    // Operation counters: written on the loop only (single writer), read from any thread.
    volatile long fallbackOperations;
    volatile long primaryFailures;
    volatile long primarySkips;
    volatile long operationTimeouts;
    volatile long operationsCancelled;

    /**
     * Whether a primary engine is healthy on this loop: consecutive failures, and until when it is skipped. Loop
     * thread only.
     */
    static final class EngineHealth {
        private int consecutiveFailures;
        private long skipUntilNanos;
        private boolean skipping;

        /** True when the next operation should go straight to the fallback. */
        boolean skipPrimary(OffloadConfig config, long now) {
            int threshold = config.unhealthyAfterFailures();
            if (threshold == 0 || consecutiveFailures < threshold || !skipping) {
                return false;
            }
            if (now - skipUntilNanos < 0) {
                return true;
            }
            // Cooldown over: this operation probes the primary; the others keep skipping it meanwhile.
            skipUntilNanos = now + config.unhealthyCooldown().toNanos();
            return false;
        }

        void onFailure(OffloadConfig config, long now) {
            if (consecutiveFailures < Integer.MAX_VALUE) {
                consecutiveFailures++;
            }
            int threshold = config.unhealthyAfterFailures();
            if (threshold > 0 && consecutiveFailures >= threshold) {
                skipping = true;
                skipUntilNanos = now + config.unhealthyCooldown().toNanos();
            }
        }

        void onSuccess() {
            consecutiveFailures = 0;
            skipping = false;
        }
    }

    private LoopState(IoEventLoop loop) {
        this.loop = loop;
        this.turns = HandshakeTurns.of(loop);
        this.registry = new WaitFdRegistry(loop, turns);
    }

    /** The state of {@code loop}, created on first use. Loop thread. */
    static LoopState of(IoEventLoop loop) {
        LoopState s = STATES.get(loop);
        if (s != null) {
            return s;
        }
        s = new LoopState(loop);
        STATES.put(loop, s);
        LoopState created = s;
        if (loop instanceof SingleThreadEventExecutor executor) {
            executor.addShutdownHook(created::onShutdown);
        }
        loop.terminationFuture().addListener(f -> created.onTerminated());
        return s;
    }

    /** The state of {@code loop}, or null when no connection was ever opened on it (or it has terminated). */
    static LoopState peek(IoEventLoop loop) {
        return STATES.get(loop);
    }

    /** The pool for {@code maxJobs} on this loop. Loop thread. */
    AsyncJobPool pool(int maxJobs) {
        return pools.computeIfAbsent(maxJobs, n -> new AsyncJobPool(n, loop));
    }

    /**
     * The metrics recorder of {@code engine} for {@code metrics} on this loop, made once. Loop thread; after the first
     * call for a pair it allocates nothing (two identity-map lookups, no capturing lambda).
     */
    OffloadMetrics.Recorder recorder(OffloadMetrics metrics, AsyncEngine engine) {
        if (metrics == OffloadMetrics.none()) {
            return NoopRecorder.INSTANCE;
        }
        IdentityHashMap<AsyncEngine, OffloadMetrics.Recorder> byEngine = recorders.get(metrics);
        if (byEngine == null) {
            byEngine = new IdentityHashMap<>(2);
            recorders.put(metrics, byEngine);
        }
        OffloadMetrics.Recorder r = byEngine.get(engine);
        if (r == null) {
            r = Objects.requireNonNull(metrics.recorder(engine, loop), "OffloadMetrics.recorder returned null");
            byEngine.put(engine, r);
        }
        return r;
    }

    /** The health record of {@code engine} on this loop. Loop thread. */
    EngineHealth health(AsyncEngine engine) {
        return health.computeIfAbsent(engine, e -> new EngineHealth());
    }

    int jobsInFlight() {
        int n = 0;
        for (AsyncJobPool p : pools.values()) {
            n += p.inFlight();
        }
        return n;
    }

    int jobsWaiting() {
        int n = 0;
        for (AsyncJobPool p : pools.values()) {
            n += p.waiting();
        }
        return n;
    }

    int openConnections() {
        return openConnections;
    }

    boolean isShutDown() {
        return shutDown;
    }

    void add(AsyncOffloadConnection c) {
        if (connections.add(c)) {
            openConnections++;
        }
    }

    void remove(AsyncOffloadConnection c) {
        if (connections.remove(c)) {
            openConnections--;
        }
    }

    void addClosing(AsyncOffloadConnection c) {
        closing.add(c);
    }

    void removeClosing(AsyncOffloadConnection c) {
        closing.remove(c);
    }

    /** Closed connections whose ctx is not closed yet. Loop thread. */
    int closingConnections() {
        return closing.size();
    }

    /** Loop thread, while the loop shuts down. */
    private void onShutdown() {
        shutDown = true;
        registry.shutdown();
        for (AsyncOffloadConnection c : new ArrayList<>(connections)) {
            c.close();
        }
    }

    /** Any thread, after the loop has terminated: nothing runs on the loop any more. */
    private void onTerminated() {
        STATES.remove(loop, this);
        // The loop thread has ended (its termination happens-before this listener), so its fields are safe to read.
        for (AsyncOffloadConnection c : new ArrayList<>(connections)) {
            c.closeAfterTermination();
        }
        for (AsyncOffloadConnection c : new ArrayList<>(closing)) {
            c.closeAfterTermination();
        }
        connections.clear();
        closing.clear();
    }

    @Override
    public String toString() {
        return "LoopState[" + loop + ", connections=" + openConnections + ", " + registry + ']';
    }
}
