package io.asyncctx.bench.jmh;

import org.HdrHistogram.Histogram;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.profile.InternalProfiler;
import org.openjdk.jmh.results.AggregationPolicy;
import org.openjdk.jmh.results.IterationResult;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.ScalarResult;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * Adds the one-way latencies recorded in {@link Latencies} to JMH's results as secondary metrics, per iteration:
 * {@code ·<name>.p50}, {@code .p90}, {@code .p99} (microseconds; averaged over the iterations in the run's score) and
 * {@code .n} (the number of samples, summed). Enable with {@code -prof io.asyncctx.bench.jmh.OneWayLatencyProfiler};
 * benchmarks that record nothing get nothing.
 *
 * <p>Threading: JMH calls it in the benchmark's JVM, on its control thread, between iterations.
 */
public final class OneWayLatencyProfiler implements InternalProfiler {

    @Override
    public String getDescription() {
        return "one-way latencies (completing thread -> listener on the event loop) of the resume benchmarks";
    }

    @Override
    public void beforeIteration(BenchmarkParams benchmarkParams, IterationParams iterationParams) {
        Latencies.takeIntervals(); // drop what the previous iteration (or the set-up) left
    }

    @Override
    public Collection<? extends Result> afterIteration(BenchmarkParams benchmarkParams,
                                                       IterationParams iterationParams, IterationResult result) {
        List<Result> out = new ArrayList<>();
        for (Map.Entry<String, Histogram> e : Latencies.takeIntervals().entrySet()) {
            Histogram h = e.getValue();
            String name = e.getKey();
            out.add(new ScalarResult(name + ".p50", h.getValueAtPercentile(50) / 1000.0, "us", AggregationPolicy.AVG));
            out.add(new ScalarResult(name + ".p90", h.getValueAtPercentile(90) / 1000.0, "us", AggregationPolicy.AVG));
            out.add(new ScalarResult(name + ".p99", h.getValueAtPercentile(99) / 1000.0, "us", AggregationPolicy.AVG));
            out.add(new ScalarResult(name + ".n", h.getTotalCount(), "#", AggregationPolicy.SUM));
        }
        return out;
    }
}
