package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.netty.channel.IoEventLoop;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Threading: thread-safe. Meters are created when a loop first offloads for an engine; after that, recording is a
 * counter increment or a timer record on the loop's thread, with no lookup.
 *
 * <p>Records the offload path into a Micrometer {@link MeterRegistry}: counters and timers tagged {@code engine},
 * {@code loop} and {@code protocol} ({@code tcp}, or {@code quic} through {@link #forProtocol}), and per-loop gauges.
 * The names are listed in the README. Only this class refers to Micrometer; the library runs without Micrometer on the
 * class path as long as this class is not used.
 *
 * <p>Lifetime: a loop's gauges are removed from the registry when the loop terminates (its termination future), and
 * this object then holds nothing of the loop: a group that was shut down can be collected. The gauges themselves hold
 * their loop weakly (Micrometer's default). The counters and timers of a terminated loop stay in the registry with
 * their totals.
 */
public final class MicrometerOffloadMetrics implements OffloadMetrics {

    /** Prefix of every meter name. */
    public static final String PREFIX = "asyncctx.";

    /** The protocol tag of TCP handshakes (this class's instances made by the public constructor). */
    public static final String TCP = "tcp";

    private final MeterRegistry registry;
    private final String protocol;
    /** The gauges of each live loop (shared by the protocols); an entry leaves when its loop terminates. */
    private final Map<IoEventLoop, List<Meter>> loopGauges;
    private final Map<String, MicrometerOffloadMetrics> byProtocol;

    /** Records into {@code registry}, tagged {@code protocol=tcp}. */
    public MicrometerOffloadMetrics(MeterRegistry registry) {
        this(Objects.requireNonNull(registry, "registry"), TCP, new ConcurrentHashMap<>(), new ConcurrentHashMap<>());
        byProtocol.put(TCP, this);
    }

    private MicrometerOffloadMetrics(MeterRegistry registry, String protocol, Map<IoEventLoop, List<Meter>> loopGauges,
                                     Map<String, MicrometerOffloadMetrics> byProtocol) {
        this.registry = registry;
        this.protocol = protocol;
        this.loopGauges = loopGauges;
        this.byProtocol = byProtocol;
    }

    /** The same registry, tagged {@code protocol=<protocol>}; the same instance for the same protocol. */
    @Override
    public MicrometerOffloadMetrics forProtocol(String protocol) {
        Objects.requireNonNull(protocol, "protocol");
        return byProtocol.computeIfAbsent(protocol, p -> new MicrometerOffloadMetrics(registry, p, loopGauges,
                byProtocol));
    }

    /** The value of this instance's {@code protocol} tag. */
    public String protocol() {
        return protocol;
    }

    @Override
    public Recorder recorder(AsyncEngine engine, IoEventLoop loop) {
        String loopName = Thread.currentThread().getName();
        boolean[] created = new boolean[1];
        loopGauges.computeIfAbsent(loop, l -> {
            created[0] = true;
            Tags t = Tags.of("loop", loopName);
            return List.of(
                    Gauge.builder(PREFIX + "jobs.inflight", l, AsyncOffloadLoops::jobsInFlight).tags(t)
                            .description("Jobs started and not yet ended on this event loop").register(registry),
                    Gauge.builder(PREFIX + "jobs.waiting", l, AsyncOffloadLoops::jobsWaiting).tags(t)
                            .description("Operations waiting for a free job (NO_JOBS)").register(registry),
                    Gauge.builder(PREFIX + "ctx.live", l, AsyncOffloadLoops::openConnections).tags(t)
                            .description("Live AsyncWaitCtx (open offload connections)").register(registry),
                    Gauge.builder(PREFIX + "waitfds.registered", l, AsyncOffloadLoops::registeredWaitFds).tags(t)
                            .description("Wait fds registered with this event loop").register(registry));
        });
        if (created[0]) {
            // Outside computeIfAbsent: a loop that has terminated already runs the listener at once.
            loop.terminationFuture().addListener(f -> removeGauges(loop));
        }
        return new MicrometerRecorder(registry, Tags.of("engine", engine.name(), "loop", loopName,
                "protocol", protocol));
    }

    /** Any thread: {@code loop} has terminated; forget it and remove its gauges. */
    private void removeGauges(IoEventLoop loop) {
        List<Meter> gauges = loopGauges.remove(loop);
        if (gauges != null) {
            for (Meter m : gauges) {
                registry.remove(m);
            }
        }
    }

    /** Loops whose gauges this object holds (live loops that have offloaded). Any thread; for tests. */
    int loopsHeld() {
        return loopGauges.size();
    }

    /** One engine on one loop. Loop thread only. */
    private static final class MicrometerRecorder implements Recorder {
        private final Counter started;
        private final Counter paused;
        private final Counter resumed;
        private final Counter finished;
        private final Map<FailureCause, Counter> failed = new EnumMap<>(FailureCause.class);
        private final Counter noJobs;
        private final Counter eagain;
        private final Counter fallbacks;
        private final Counter spurious;
        private final Counter inline;
        private final Timer pause;
        private final Timer service;

        MicrometerRecorder(MeterRegistry r, Tags t) {
            started = Counter.builder(PREFIX + "jobs.started").tags(t).description("Jobs started").register(r);
            paused = Counter.builder(PREFIX + "jobs.paused").tags(t).description("Jobs paused").register(r);
            resumed = Counter.builder(PREFIX + "jobs.resumed").tags(t)
                    .description("Paused jobs resumed with a completion").register(r);
            finished = Counter.builder(PREFIX + "jobs.finished").tags(t).description("Jobs finished with a result")
                    .register(r);
            for (FailureCause c : FailureCause.values()) {
                failed.put(c, Counter.builder(PREFIX + "jobs.failed").tags(t).tag("cause", c.name().toLowerCase(
                        java.util.Locale.ROOT)).description("Operations failed, by cause").register(r));
            }
            noJobs = Counter.builder(PREFIX + "jobs.nojobs.waits").tags(t)
                    .description("Operations that found no free job and waited").register(r);
            eagain = Counter.builder(PREFIX + "eagain.retries").tags(t).description("EAGAIN retries").register(r);
            fallbacks = Counter.builder(PREFIX + "fallbacks").tags(t)
                    .description("Operations moved to the fallback engine").register(r);
            spurious = Counter.builder(PREFIX + "wakeups.spurious").tags(t)
                    .description("Wake-ups that found nothing to do (no completion, no late signal owed)").register(r);
            inline = Counter.builder(PREFIX + "operations.inline").tags(t)
                    .description("Operations signed inline on the event loop").register(r);
            pause = Timer.builder(PREFIX + "pause.duration").tags(t).publishPercentileHistogram()
                    .description("From a job's pause to its resume").register(r);
            service = Timer.builder(PREFIX + "engine.service.duration").tags(t).publishPercentileHistogram()
                    .description("From a job's start to the engine's completion").register(r);
        }

        @Override
        public void jobStarted() {
            started.increment();
        }

        @Override
        public void jobPaused() {
            paused.increment();
        }

        @Override
        public void jobResumed(long pausedNanos) {
            resumed.increment();
            pause.record(pausedNanos, TimeUnit.NANOSECONDS);
        }

        @Override
        public void jobFinished(long serviceNanos) {
            finished.increment();
            service.record(serviceNanos, TimeUnit.NANOSECONDS);
        }

        @Override
        public void jobFailed(FailureCause cause) {
            failed.get(cause).increment();
        }

        @Override
        public void noJobsWait() {
            noJobs.increment();
        }

        @Override
        public void eagainRetry() {
            eagain.increment();
        }

        @Override
        public void fallback() {
            fallbacks.increment();
        }

        @Override
        public void spuriousWakeup() {
            spurious.increment();
        }

        @Override
        public void inlineOperation() {
            inline.increment();
        }
    }
}
