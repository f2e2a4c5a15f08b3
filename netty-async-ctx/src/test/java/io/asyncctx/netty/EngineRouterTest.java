package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.AsyncEngineException;
import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.KeyOperation;

import java.security.PublicKey;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * {@link EngineRouter} on the test thread with a scripted clock: primary or fallback, the unhealthy rule with its
 * cooldown and probe, the fallback session opened once, failures carried, sessions closed.
 */
class EngineRouterTest {

    private static final long SECOND = 1_000_000_000L;

    /** An engine that only counts its sessions. */
    private static final class CountingEngine implements AsyncEngine {
        final String name;
        final AtomicInteger sessions = new AtomicInteger();
        final AtomicInteger closedSessions = new AtomicInteger();
        RuntimeException failNewSession;

        CountingEngine(String name) {
            this.name = name;
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public PublicKey publicKey() {
            return null;
        }

        @Override
        public EngineSession newSession(AsyncWaitCtx ctx, Executor owner) {
            if (failNewSession != null) {
                throw failNewSession;
            }
            sessions.incrementAndGet();
            return new EngineSession() {
                @Override
                public void submit(AsyncJob<byte[]> job, KeyOperation operation) {
                }

                @Override
                public void close() {
                    closedSessions.incrementAndGet();
                }
            };
        }

        @Override
        public void close() {
        }
    }

    private final CountingEngine primary = new CountingEngine("primary");
    private final CountingEngine fallback = new CountingEngine("fallback");
    private final AsyncWaitCtx ctx = new AsyncWaitCtx();
    private final Executor owner = Runnable::run;

    private EngineRouter router(AsyncEngine fb, LoopState.EngineHealth health) {
        OffloadConfig config = fb == null ? OffloadConfig.defaults() : OffloadConfig.builder().fallbackEngine(fb)
                .unhealthyAfterFailures(2).unhealthyCooldown(Duration.ofSeconds(1)).build();
        return new EngineRouter(primary, primary.newSession(ctx, owner), fb, health, config);
    }

    @Test
    void shouldStayOnThePrimaryWithoutAFallback() {
        EngineRouter r = router(null, new LoopState.EngineHealth());
        for (int i = 0; i < 5; i++) {
            r.usePrimary();
            r.attemptFailed(i);
        }
        assertFalse(r.skipPrimary(10), "no fallback: never skip");
        assertFalse(r.canFallBack());
        assertSame(primary, r.current());
    }

    @Test
    void shouldSkipAnUnhealthyPrimaryUntilTheCooldownThenProbeIt() throws Exception {
        LoopState.EngineHealth health = new LoopState.EngineHealth();
        EngineRouter r = router(fallback, health);
        long t = 100 * SECOND;
        r.usePrimary();
        r.attemptFailed(t);
        assertFalse(r.skipPrimary(t), "one failure is not enough");
        r.attemptFailed(t);
        assertTrue(r.skipPrimary(t + 1), "two failures in a row: skipped");
        assertTrue(r.skipPrimary(t + SECOND - 1), "still cooling down");
        assertFalse(r.skipPrimary(t + SECOND), "cooldown over: this operation probes the primary");
        assertTrue(r.skipPrimary(t + SECOND + 1), "the others keep skipping while the probe runs");
        r.usePrimary();
        r.attemptSucceeded();
        assertFalse(r.skipPrimary(t + SECOND + 2), "the probe succeeded: healthy again");
    }

    @Test
    void shouldNotBlameThePrimaryForFallbackFailures() throws Exception {
        LoopState.EngineHealth health = new LoopState.EngineHealth();
        EngineRouter r = router(fallback, health);
        r.useFallback(ctx, owner, null);
        r.attemptFailed(1);
        r.attemptFailed(2);
        assertFalse(r.skipPrimary(3));
    }

    @Test
    void shouldOpenTheFallbackSessionOnceAndCloseBoth() throws Exception {
        EngineRouter r = router(fallback, new LoopState.EngineHealth());
        assertTrue(r.canFallBack());
        EngineSession first = r.useFallback(ctx, owner, new AsyncEngineException("primary failed"));
        assertTrue(r.onFallback());
        assertSame(fallback, r.current());
        assertFalse(r.canFallBack(), "no second fallback");
        r.reset();
        assertFalse(r.onFallback(), "the next operation starts on the primary");
        assertSame(first, r.useFallback(ctx, owner, null));
        assertEquals(1, fallback.sessions.get());
        r.close();
        assertEquals(1, primary.closedSessions.get());
        assertEquals(1, fallback.closedSessions.get());
    }

    @Test
    void shouldCarryThePrimaryFailureIntoTheFinalOne() throws Exception {
        EngineRouter r = router(fallback, new LoopState.EngineHealth());
        AsyncEngineException primaryFailure = new AsyncEngineException("primary failed");
        r.useFallback(ctx, owner, primaryFailure);
        AsyncEngineException fallbackFailure = new AsyncEngineException("fallback failed");
        assertSame(fallbackFailure, r.finalFailure(fallbackFailure));
        assertEquals(1, fallbackFailure.getSuppressed().length);
        assertSame(primaryFailure, fallbackFailure.getSuppressed()[0]);
    }

    @Test
    void shouldExplainAFallbackThatCannotOpenASession() {
        fallback.failNewSession = new IllegalStateException("token gone");
        EngineRouter r = router(fallback, new LoopState.EngineHealth());
        AsyncEngineException cause = new AsyncEngineException("primary failed");
        AsyncEngineException e = assertThrows(AsyncEngineException.class, () -> r.useFallback(ctx, owner, cause));
        assertTrue(e.getMessage().contains("could not open a session of fallback engine 'fallback'")
                && e.getMessage().contains("token gone"), e.getMessage());
        assertSame(cause, e.getSuppressed()[0]);
        assertFalse(r.onFallback());
    }
}
