package io.asyncctx.netty;

import static io.asyncctx.netty.Loops.await;
import static io.asyncctx.netty.Loops.onLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.netty.Loops.Transport;
import io.asyncctx.netty.OffloadConfig.Notify;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.util.concurrent.Future;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Counters, timers and gauges move as documented through a scripted set of operations, one per failure cause, on a
 * real epoll loop with a real engine thread; and the JFR events carry the pause.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class OffloadMetricsTest {

    private MultiThreadIoEventLoopGroup group;
    private IoEventLoop loop;
    private TestEngine engine;
    private MeterRegistry registry;
    private OffloadMetrics metrics;

    @BeforeEach
    void setUp() {
        group = Loops.group(Transport.EPOLL, 1);
        loop = (IoEventLoop) group.next();
        engine = new TestEngine(FdMode.PER_CTX);
        registry = new SimpleMeterRegistry();
        metrics = new MicrometerOffloadMetrics(registry);
    }

    @AfterEach
    void tearDown() throws Exception {
        Loops.shutdown(group);
        engine.close();
    }

    private OffloadConfig.Builder config() {
        return OffloadConfig.builder().notify(Notify.FD).metrics(metrics)
                .eagainInitialBackoff(Duration.ofMillis(1)).eagainMaxBackoff(Duration.ofMillis(2)).eagainMaxRetries(3);
    }

    private double count(String name, String... tags) {
        var search = registry.find("asyncctx." + name).tag("engine", "test-engine");
        for (int i = 0; i < tags.length; i += 2) {
            search = search.tag(tags[i], tags[i + 1]);
        }
        var c = search.counter();
        return c == null ? 0 : c.count();
    }

    private long timerCount(String name) {
        var t = registry.find("asyncctx." + name).tag("engine", "test-engine").timer();
        return t == null ? 0 : t.count();
    }

    private double gauge(String name) {
        var g = registry.find("asyncctx." + name).gauge();
        return g == null ? -1 : g.value();
    }

    /** Submits, waits until the job has really paused, then completes it from this (engine) thread. */
    private byte[] runPausedThenComplete(AsyncOffloadConnection c, int i) throws Exception {
        engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
        Future<byte[]> f = onLoop(loop, () -> c.submit(Loops.op(i)));
        await("job paused", () -> {
            try {
                return engine.pendingCount() == 1 && onLoop(loop, c::isPaused);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        assertEquals(1, engine.completeAll());
        assertTrue(f.await(10, TimeUnit.SECONDS), "operation did not end");
        return f.isSuccess() ? f.getNow() : null;
    }

    private byte[] run(AsyncOffloadConnection c, int i) throws Exception {
        Future<byte[]> f = onLoop(loop, () -> c.submit(Loops.op(i)));
        assertTrue(f.await(10, TimeUnit.SECONDS), "operation did not end");
        return f.isSuccess() ? f.getNow() : null;
    }

    @Test
    void shouldTagTcpAndQuicJobsApart() throws Exception {
        OffloadMetrics quic = metrics.forProtocol("quic");
        assertTrue(quic == metrics.forProtocol("quic"), "one instance per protocol (the library caches recorders)");
        assertTrue(metrics == metrics.forProtocol(MicrometerOffloadMetrics.TCP));
        AsyncOffloadConnection tcp = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, config().build()));
        AsyncOffloadConnection q = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine,
                config().metrics(quic).build()));
        engine.behaviour = TestEngine.Behaviour.SYNC;
        assertTrue(run(tcp, 1) != null);
        assertTrue(run(q, 2) != null);
        assertTrue(run(q, 3) != null);
        assertEquals(1, count("jobs.started", "protocol", "tcp"));
        assertEquals(2, count("jobs.started", "protocol", "quic"));
        onLoop(loop, () -> {
            tcp.close();
            q.close();
        });
    }

    @Test
    void shouldCountEveryStepAndFailureCause() throws Exception {
        AsyncOffloadConnection c = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, config().build()));

        assertTrue(runPausedThenComplete(c, 1) != null);
        assertEquals(1, count("jobs.started"));
        assertEquals(1, count("jobs.paused"));
        assertEquals(1, count("jobs.resumed"));
        assertEquals(1, count("jobs.finished"));
        assertEquals(1, timerCount("pause.duration"));
        assertEquals(1, timerCount("engine.service.duration"));

        engine.behaviour = TestEngine.Behaviour.SYNC; // finishes inside start: no pause
        assertTrue(run(c, 2) != null);
        assertEquals(2, count("jobs.started"));
        assertEquals(1, count("jobs.paused"));
        assertEquals(2, count("jobs.finished"));

        engine.behaviour = TestEngine.Behaviour.FAIL_LATER;
        assertEquals(null, run(c, 3));
        engine.behaviour = TestEngine.Behaviour.ERR;
        assertEquals(null, run(c, 4));
        assertEquals(2, count("jobs.failed", "cause", "err"));

        engine.behaviour = TestEngine.Behaviour.DELAYED;
        engine.refuseNext.set(2);
        assertTrue(run(c, 5) != null);
        assertEquals(2, count("eagain.retries"));

        engine.refuseNext.set(-1);
        assertEquals(null, run(c, 6));
        assertEquals(1, count("jobs.failed", "cause", "eagain_exhausted"));
        assertEquals(5, count("eagain.retries"), "2 before, then 3 more until the retries ran out");
        engine.refuseNext.set(0);

        engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
        Future<byte[]> held = onLoop(loop, () -> c.submit(Loops.op(7)));
        await("job paused", () -> engine.pendingCount() == 1);
        assertEquals(1, gauge("jobs.inflight"));
        assertEquals(1, gauge("waitfds.registered"));
        assertTrue(gauge("ctx.live") >= 1);
        onLoop(loop, c::close);
        assertTrue(held.await(10, TimeUnit.SECONDS));
        assertEquals(1, count("jobs.failed", "cause", "cancelled"));
        assertEquals(0, gauge("jobs.inflight"));
        engine.takePending();
        await("fd released", () -> gauge("waitfds.registered") == 0);

        AsyncOffloadConnection timed = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine,
                config().operationTimeout(Duration.ofMillis(50)).build()));
        assertEquals(null, run(timed, 8));
        assertEquals(1, count("jobs.failed", "cause", "deadline"));
        engine.takePending();
        onLoop(loop, timed::close);
    }

    @Test
    void shouldCountSpuriousWakeupsNoJobsWaitsAndFallbacks() throws Exception {
        OffloadConfig cfg = config().notify(Notify.CALLBACK).maxJobsPerLoop(1).build();
        AsyncOffloadConnection a = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, cfg));
        AsyncOffloadConnection b = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, cfg));
        engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
        Future<byte[]> fa = onLoop(loop, () -> a.submit(Loops.op(1)));
        await("a paused", () -> engine.pendingCount() == 1);
        // A callback with no completion: a spurious wake-up.
        AsyncWaitCtx.CallbackBinding binding = onLoop(loop, () -> a.waitCtx().getCallbackBinding());
        binding.call();
        await("spurious wake-up counted", () -> count("wakeups.spurious") == 1);
        Future<byte[]> fb = onLoop(loop, () -> b.submit(Loops.op(2)));
        assertEquals(1, count("jobs.nojobs.waits"), "b found the only job taken");
        assertEquals(1, gauge("jobs.waiting"));
        engine.completeAll();
        assertTrue(fa.await(10, TimeUnit.SECONDS) && fa.isSuccess());
        await("b started", () -> engine.pendingCount() == 1);
        engine.completeAll();
        assertTrue(fb.await(10, TimeUnit.SECONDS) && fb.isSuccess());
        onLoop(loop, a::close);
        onLoop(loop, b::close);

        try (TestEngine fallback = new TestEngine(FdMode.PER_CTX)) {
            engine.behaviour = TestEngine.Behaviour.FAIL_LATER;
            fallback.behaviour = TestEngine.Behaviour.DELAYED;
            AsyncOffloadConnection f = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine,
                    config().fallbackEngine(fallback).build()));
            assertTrue(run(f, 3) != null);
            assertEquals(1, count("fallbacks"));
            onLoop(loop, f::close);
        }
    }

    @Test
    void shouldEmitJfrPauseAndResumeEvents(@TempDir Path dir) throws Exception {
        AsyncOffloadConnection c = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, config().build()));
        Path file = dir.resolve("offload.jfr");
        try (Recording recording = new Recording()) {
            recording.enable(OffloadJfrEvents.JobPause.class);
            recording.enable(OffloadJfrEvents.JobResume.class);
            recording.start();
            assertTrue(runPausedThenComplete(c, 1) != null);
            recording.stop();
            recording.dump(file);
        }
        onLoop(loop, c::close);
        List<RecordedEvent> events = RecordingFile.readAllEvents(file);
        RecordedEvent pause = events.stream().filter(e -> e.getEventType().getName().equals("io.asyncctx.JobPause"))
                .findFirst().orElseThrow(() -> new AssertionError("no JobPause event in " + events));
        RecordedEvent resume = events.stream().filter(e -> e.getEventType().getName().equals("io.asyncctx.JobResume"))
                .findFirst().orElseThrow(() -> new AssertionError("no JobResume event in " + events));
        assertEquals("test-engine", pause.getString("engine"));
        assertEquals(pause.getLong("connectionId"), resume.getLong("connectionId"));
        // Only the presence and sign of the pause duration are checked: its length is the test's own scheduling.
        assertTrue(resume.getDuration("pausedNanos").toNanos() > 0, "the pause duration is recorded: " + resume);
        assertTrue(resume.getDuration("pausedNanos").toNanos() < TimeUnit.SECONDS.toNanos(10), resume::toString);
        assertTrue(Files.size(file) > 0);
    }

    @Test
    void shouldRecordNothingByDefault() throws Exception {
        AsyncOffloadConnection c = onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine,
                OffloadConfig.builder().notify(Notify.FD).build()));
        engine.behaviour = TestEngine.Behaviour.DELAYED;
        assertTrue(run(c, 1) != null);
        onLoop(loop, c::close);
        assertTrue(registry.getMeters().isEmpty(), registry.getMeters()::toString);
    }

    /**
     * A group that offloaded with metrics and was shut down: its loop's gauges leave the registry, the metrics object
     * forgets the loop, and nothing of ours keeps the loop reachable (collected).
     */
    @Test
    void shouldRemoveLoopGaugesAndReleaseTheLoopWhenItTerminates() throws Exception {
        MicrometerOffloadMetrics m = new MicrometerOffloadMetrics(registry);
        String[] loopName = new String[1];
        // In its own frame, so that no local of this one holds the loop or its group.
        java.lang.ref.WeakReference<IoEventLoop> ref = offloadOnANewGroupAndShutItDown(m, loopName);
        await("the loop's gauges removed", () -> m.loopsHeld() == 0);
        for (String gauge : List.of("jobs.inflight", "jobs.waiting", "ctx.live", "waitfds.registered")) {
            assertEquals(null, registry.find("asyncctx." + gauge).tag("loop", loopName[0]).gauge(), gauge);
        }
        assertTrue(registry.find("asyncctx.jobs.started").tag("loop", loopName[0]).counter() != null,
                "the loop's counters keep their totals");
        LeakCheck.awaitCollected("the terminated loop", ref);
    }

    private java.lang.ref.WeakReference<IoEventLoop> offloadOnANewGroupAndShutItDown(MicrometerOffloadMetrics m,
            String[] loopName) throws Exception {
        MultiThreadIoEventLoopGroup other = Loops.group(Transport.EPOLL, 1);
        IoEventLoop otherLoop = (IoEventLoop) other.next();
        loopName[0] = onLoop(otherLoop, () -> Thread.currentThread().getName());
        AsyncOffloadConnection c = onLoop(otherLoop, () -> AsyncOffloadConnection.open(otherLoop, engine,
                OffloadConfig.builder().notify(Notify.FD).metrics(m).build()));
        engine.behaviour = TestEngine.Behaviour.SYNC;
        assertTrue(onLoop(otherLoop, () -> c.submit(Loops.op(1))).get(10, TimeUnit.SECONDS) != null);
        for (String gauge : List.of("jobs.inflight", "jobs.waiting", "ctx.live", "waitfds.registered")) {
            assertTrue(registry.find("asyncctx." + gauge).tag("loop", loopName[0]).gauge() != null, gauge);
        }
        assertEquals(1.0, registry.find("asyncctx.ctx.live").tag("loop", loopName[0]).gauge().value());
        assertEquals(1, m.loopsHeld());
        Loops.shutdown(other);
        return new java.lang.ref.WeakReference<>(otherLoop);
    }
}
