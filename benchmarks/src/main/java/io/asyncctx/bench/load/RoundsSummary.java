package io.asyncctx.bench.load;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The load harness's summary over alternated rounds: per server, the medians over rounds of the established
 * connections' p50, p99 and max round trip and of the handshakes/s, and the p99 and the handshakes/s against a
 * baseline server (the median and quartiles over rounds of the ratio within each round, so that a slow round of the
 * machine counts against both).
 *
 * <p>Threading: stateless; call from one thread.
 */
final class RoundsSummary {

    /** The header of {@link #writeCsv}. */
    static final String HEADER = "label,rounds,rtt_p50_ms_median,rtt_p99_ms_median,rtt_p99_ms_min,rtt_p99_ms_max,"
            + "rtt_max_ms_median,handshakes_per_s_median,handshake_failures,request_failures,baseline,"
            + "p99_vs_baseline_paired_median,p99_vs_baseline_of_medians,load_average_median,"
            + "handshakes_per_s_vs_baseline_paired_median,handshakes_per_s_vs_baseline_paired_p25,"
            + "handshakes_per_s_vs_baseline_paired_p75";

    private RoundsSummary() {
    }

    /**
     * Prints a table and returns one CSV line per label (see {@link #HEADER}), in the order of first appearance.
     *
     * @param baseline the label (or label prefix before {@code @} or a space) of the server to compare with
     */
    static List<String> summarize(List<ResultsWriter.Row> rows, String baseline) {
        Map<String, List<ResultsWriter.Row>> byLabel = new LinkedHashMap<>();
        for (ResultsWriter.Row r : rows) {
            byLabel.computeIfAbsent(r.label(), k -> new ArrayList<>()).add(r);
        }
        List<ResultsWriter.Row> base = byLabel.entrySet().stream().filter(e -> matches(e.getKey(), baseline))
                .map(Map.Entry::getValue).findFirst().orElse(List.of());
        Map<Integer, Double> baseP99ByRound = new HashMap<>();
        Map<Integer, Double> baseRateByRound = new HashMap<>();
        for (ResultsWriter.Row r : base) {
            baseP99ByRound.put(r.round(), r.ms(false, 99));
            baseRateByRound.put(r.round(), r.result().handshakesPerSecond());
        }
        double baseP99 = base.isEmpty() ? Double.NaN : H2loadCpuHarness.median(values(base, 1));
        List<String> lines = new ArrayList<>();
        System.out.printf(Locale.ROOT, "%nestablished round trips over %d round(s), medians (p99 against %s paired "
                + "by round)%n", rows.stream().mapToInt(ResultsWriter.Row::round).max().orElse(0) + 1, baseline);
        for (Map.Entry<String, List<ResultsWriter.Row>> e : byLabel.entrySet()) {
            List<ResultsWriter.Row> mine = e.getValue();
            double p50 = H2loadCpuHarness.median(values(mine, 0));
            double[] p99s = values(mine, 1);
            double p99 = H2loadCpuHarness.median(p99s);
            double max = H2loadCpuHarness.median(values(mine, 2));
            double hs = H2loadCpuHarness.median(values(mine, 3));
            double load = H2loadCpuHarness.median(mine.stream().mapToDouble(ResultsWriter.Row::loadAverage)
                    .toArray());
            double[] ratios = mine.stream().filter(r -> baseP99ByRound.containsKey(r.round()))
                    .mapToDouble(r -> r.ms(false, 99) / baseP99ByRound.get(r.round())).toArray();
            double paired = ratios.length == 0 ? Double.NaN : H2loadCpuHarness.median(ratios);
            double[] rateRatios = mine.stream().filter(r -> baseRateByRound.containsKey(r.round()))
                    .mapToDouble(r -> r.result().handshakesPerSecond() / baseRateByRound.get(r.round())).toArray();
            double rateQ1 = rateRatios.length == 0 ? Double.NaN : H2loadCpuHarness.quantile(rateRatios, 0.25);
            double rateMedian = rateRatios.length == 0 ? Double.NaN : H2loadCpuHarness.median(rateRatios);
            double rateQ3 = rateRatios.length == 0 ? Double.NaN : H2loadCpuHarness.quantile(rateRatios, 0.75);
            long hsFailures = mine.stream().mapToLong(r -> r.result().handshakeFailures()).sum();
            long reqFailures = mine.stream().mapToLong(r -> r.result().requestFailures()).sum();
            double[] sorted = p99s.clone();
            java.util.Arrays.sort(sorted);
            lines.add(String.format(Locale.ROOT, "%s,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.1f,%d,%d,%s,%.4f,%.4f,%.2f,%.4f,%.4f,"
                    + "%.4f", e.getKey(), mine.size(), p50, p99, sorted[0], sorted[sorted.length - 1], max, hs,
                    hsFailures, reqFailures, baseline, paired, p99 / baseP99, load, rateMedian, rateQ1, rateQ3));
            System.out.printf(Locale.ROOT, "  %-22s p50 %7.2f ms  p99 %7.2f ms [%.2f-%.2f]  max %7.2f ms  %7.1f hs/s  "
                            + "p99 %.3fx, hs/s %.3fx [%.3f-%.3f] %s (paired)  %d/%d failures%n", e.getKey(), p50, p99,
                    sorted[0], sorted[sorted.length - 1], max, hs, paired, rateMedian, rateQ1, rateQ3, baseline,
                    hsFailures, reqFailures);
        }
        return lines;
    }

    static void writeCsv(Path file, List<String> lines) throws IOException {
        List<String> all = new ArrayList<>();
        all.add(HEADER);
        all.addAll(lines);
        Files.write(file, all, StandardCharsets.UTF_8);
    }

    /** Whether {@code label} is the baseline's, or the baseline's with a latency or rate suffix. */
    static boolean matches(String label, String baseline) {
        return label.equals(baseline) || label.startsWith(baseline + "@") || label.startsWith(baseline + " ");
    }

    /** 0: p50, 1: p99, 2: max (established, ms), 3: handshakes/s. */
    private static double[] values(List<ResultsWriter.Row> rows, int what) {
        return rows.stream().mapToDouble(r -> switch (what) {
            case 0 -> r.ms(false, 50);
            case 1 -> r.ms(false, 99);
            case 2 -> r.result().roundTripMicros().getMaxValue() / 1000.0;
            default -> r.result().handshakesPerSecond();
        }).toArray();
    }
}
