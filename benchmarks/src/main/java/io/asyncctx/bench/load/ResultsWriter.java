package io.asyncctx.bench.load;

import io.asyncctx.examples.LoadClient;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;
import javax.imageio.ImageIO;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.CategoryAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.category.DefaultCategoryDataset;

/**
 * Writes the harness's rows as CSV (one row per server run) and as one PNG of three bar charts: handshakes/s, server
 * CPU milliseconds per handshake, and the established connections' p99 round trip.
 *
 * <p>Threading: stateless; call from one thread.
 */
final class ResultsWriter {

    /** One measured server. */
    record Row(String label, String mode, String engine, String key, int concurrency, int established, int threads,
               LoadClient.Result result, double serverCpuSeconds, String cpuScope, double loadAverage,
               double rate, int round) {

        double cpuMillisPerHandshake() {
            return result.handshakes() == 0 ? Double.NaN : 1000 * serverCpuSeconds / result.handshakes();
        }

        double ms(boolean handshake, double percentile) {
            return (handshake ? result.handshakeMicros() : result.roundTripMicros()).getValueAtPercentile(percentile)
                    / 1000.0;
        }

        String describe() {
            return String.format(Locale.ROOT, "%-24s %8.0f handshakes/s (%d failed), handshake p50 %.2f ms p99 %.2f "
                            + "ms, established p99 %.2f ms, server CPU %.3f ms/handshake (%s), storm client loop "
                            + "%.0f%% (all client loops %.0f%%), load avg %.1f",
                    label, result.handshakesPerSecond(), result.handshakeFailures(), ms(true, 50), ms(true, 99),
                    ms(false, 99), cpuMillisPerHandshake(), cpuScope, 100 * result.stormCpuShare(),
                    100 * result.clientCpuShare(), loadAverage);
        }
    }

    private ResultsWriter() {
    }

    static void writeCsv(Path csv, List<Row> rows) throws IOException {
        StringBuilder sb = new StringBuilder("label,mode,engine,key,concurrency,established,server_threads,seconds,"
                + "handshakes,handshake_failures,handshakes_per_s,hs_p50_ms,hs_p90_ms,hs_p99_ms,hs_max_ms,requests,"
                + "request_failures,rtt_p50_ms,rtt_p99_ms,rtt_max_ms,server_cpu_s,server_cpu_ms_per_handshake,"
                + "cpu_scope,client_cpu_share,load_average_1m,rate_target_per_s,storm_loop_cpu_share,round\n");
        for (Row r : rows) {
            LoadClient.Result x = r.result();
            sb.append(String.format(Locale.ROOT, "%s,%s,%s,%s,%d,%d,%d,%.3f,%d,%d,%.1f,%.3f,%.3f,%.3f,%.3f,%d,%d,"
                            + "%.3f,%.3f,%.3f,%.3f,%.4f,%s,%.3f,%.2f,%.1f,%.3f,%d%n", r.label(), r.mode(), r.engine(),
                    r.key(), r.concurrency(), r.established(), r.threads(), x.seconds(), x.handshakes(),
                    x.handshakeFailures(),
                    x.handshakesPerSecond(), r.ms(true, 50), r.ms(true, 90), r.ms(true, 99),
                    x.handshakeMicros().getMaxValue() / 1000.0, x.requests(), x.requestFailures(), r.ms(false, 50),
                    r.ms(false, 99), x.roundTripMicros().getMaxValue() / 1000.0, r.serverCpuSeconds(),
                    r.cpuMillisPerHandshake(), r.cpuScope().replace(',', ';'), x.clientCpuShare(), r.loadAverage(),
                    r.rate(), x.stormCpuShare(), r.round()));
        }
        Files.writeString(csv, sb.toString(), StandardCharsets.UTF_8);
    }

    static void writeChart(Path png, List<Row> rows, String subtitle) throws IOException {
        List<JFreeChart> charts = new ArrayList<>();
        charts.add(bar("handshakes/s", "handshakes/s", rows, r -> r.result().handshakesPerSecond()));
        charts.add(bar("server CPU per handshake", "ms", rows, Row::cpuMillisPerHandshake));
        if (rows.stream().anyMatch(r -> r.result().requests() > 0)) {
            charts.add(bar("established p99 round trip", "ms", rows, r -> r.ms(false, 99)));
        }
        // Wide enough for labels like "offload-callback 895/s" when a run has many rows.
        int w = Math.max(420, 70 * rows.size());
        int h = 340;
        BufferedImage img = new BufferedImage(w * charts.size(), h + 24, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, img.getWidth(), img.getHeight());
            g.setColor(Color.DARK_GRAY);
            g.drawString(subtitle, 8, 16);
            for (int i = 0; i < charts.size(); i++) {
                charts.get(i).draw(g, new Rectangle2D.Double(i * w, 24, w, h));
            }
        } finally {
            g.dispose();
        }
        ImageIO.write(img, "png", png.toFile());
    }

    private static JFreeChart bar(String title, String unit, List<Row> rows, ToDoubleFunction<Row> value) {
        DefaultCategoryDataset data = new DefaultCategoryDataset();
        for (Row r : rows) {
            double v = value.applyAsDouble(r);
            // A space lets the axis wrap "offload callback" instead of cutting it.
            data.addValue(Double.isNaN(v) ? 0 : v, title, r.label().replace('-', ' '));
        }
        JFreeChart chart = ChartFactory.createBarChart(title, null, unit, data, PlotOrientation.VERTICAL, false, false,
                false);
        chart.setBackgroundPaint(Color.WHITE);
        CategoryAxis axis = chart.getCategoryPlot().getDomainAxis();
        axis.setMaximumCategoryLabelLines(3);
        return chart;
    }
}
