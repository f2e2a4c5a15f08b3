package io.asyncctx.bench.jmh;

import org.HdrHistogram.Histogram;
import org.HdrHistogram.SingleWriterRecorder;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Named one-way latency recorders (nanoseconds) of the benchmark running in this JVM, read per iteration by
 * {@link OneWayLatencyProfiler}. A one-way latency is taken between two threads (a completing thread's
 * {@code System.nanoTime()} before it signals, and the event loop's when the listener runs), so JMH's own timing of
 * the benchmark method cannot measure it.
 *
 * <p>Threading: each recorder has one writer thread (an event loop); {@link #takeIntervals()} may run on any thread
 * at the same time. {@link #clear()} and register the recorders in the trial set-up, never in the tear-down: JMH
 * asks the profiler about the last iteration after the trial tear-down has run.
 */
final class Latencies {

    private static final ConcurrentHashMap<String, SingleWriterRecorder> RECORDERS = new ConcurrentHashMap<>();

    private Latencies() {
    }

    /** The recorder named {@code name}, created on first use (3 significant digits, auto-resizing). */
    static SingleWriterRecorder recorder(String name) {
        return RECORDERS.computeIfAbsent(name, n -> new SingleWriterRecorder(3));
    }

    /** Every recorder's values since the last call, by name; recorders with no values are left out. */
    static Map<String, Histogram> takeIntervals() {
        Map<String, Histogram> out = new TreeMap<>();
        RECORDERS.forEach((name, recorder) -> {
            Histogram h = recorder.getIntervalHistogram();
            if (h.getTotalCount() > 0) {
                out.put(name, h);
            }
        });
        return out;
    }

    /** Forgets every recorder. */
    static void clear() {
        RECORDERS.clear();
    }
}
