package io.asyncctx.bench.load;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class LoadHarnessSmokeTest {

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void shouldWriteCsvWithHandshakesAndChartAgainstInProcessOffloadServer(@TempDir Path out) throws Exception {
        int code = new CommandLine(new LoadHarness()).execute("--in-process", "--modes", "offload-fd", "--key-type",
                "ec", "--duration", "2", "--warmup", "0.5", "--concurrency", "8", "--established", "2", "--out",
                out.toString(), "--name", "smoke");
        assertEquals(0, code, "harness exit code");

        List<String> lines = Files.readAllLines(out.resolve("smoke.csv"));
        assertEquals(2, lines.size(), "header and one row: " + lines);
        List<String> header = List.of(lines.get(0).split(","));
        String[] row = lines.get(1).split(",");
        assertEquals("offload-fd", row[header.indexOf("label")]);
        long handshakes = Long.parseLong(row[header.indexOf("handshakes")]);
        assertTrue(handshakes > 0, "handshakes in the CSV: " + handshakes);
        assertTrue(Long.parseLong(row[header.indexOf("requests")]) > 0, "established requests: " + lines.get(1));

        Path png = out.resolve("smoke.png");
        assertTrue(Files.size(png) > 1000, "chart written: " + png);
        byte[] magic = new byte[4];
        System.arraycopy(Files.readAllBytes(png), 0, magic, 0, 4);
        assertEquals((byte) 0x89, magic[0]);
        assertEquals('P', magic[1]);
    }

    @Test
    @Timeout(value = 90, unit = TimeUnit.SECONDS)
    void shouldRunEachLatencyAndPaceTheStormAtAPercentageOfTheFirstUnlimitedRate(@TempDir Path out) throws Exception {
        int code = new CommandLine(new LoadHarness()).execute("--in-process", "--modes", "offload-fd", "--engine",
                "simulated", "--latency-ms", "1,0", "--rate", "0,50%", "--key-type", "ec", "--duration", "1.5",
                "--warmup", "0.3", "--concurrency", "4", "--established", "1", "--out", out.toString(), "--name",
                "paced");
        assertEquals(0, code, "harness exit code");

        List<String> lines = Files.readAllLines(out.resolve("paced.csv"));
        assertEquals(5, lines.size(), "header and 2 latencies x 2 rates: " + lines);
        List<String> header = List.of(lines.get(0).split(","));
        int label = header.indexOf("label");
        int rate = header.indexOf("rate_target_per_s");
        int hs = header.indexOf("handshakes");
        int seconds = header.indexOf("seconds");
        String[] first = lines.get(1).split(",");
        assertEquals("offload-fd@1ms", first[label]);
        assertEquals("offload-fd@0ms", lines.get(2).split(",")[label]);
        assertEquals(0.0, Double.parseDouble(first[rate]), "the first pass has no limit");
        double firstUnlimited = Long.parseLong(first[hs]) / Double.parseDouble(first[seconds]);
        for (String line : lines.subList(3, 5)) {
            String[] row = line.split(",");
            double target = Double.parseDouble(row[rate]);
            assertEquals(firstUnlimited / 2, target, firstUnlimited / 100 + 0.1, "50% of the first rate: " + line);
            // the label rounds the rate itself, the CSV keeps one decimal: 87.46/s is "87/s" and "87.5" (seen once)
            assertTrue(row[label].matches("offload-fd@\\d+ms \\d+/s"), line);
            double labelled = Double.parseDouble(row[label].substring(row[label].indexOf(' ') + 1,
                    row[label].length() - 2));
            assertEquals(target, labelled, 0.55, "the label's rate: " + line);
            // Slots are 1/rate apart: at most one per slot plus the clients that were already waiting.
            long bound = (long) Math.ceil(target * Double.parseDouble(row[seconds])) + 4 + 1;
            assertTrue(Long.parseLong(row[hs]) <= bound, "paced handshakes " + row[hs] + " <= " + bound + ": "
                    + line);
            assertTrue(Long.parseLong(row[hs]) > 0, "handshakes at the paced rate: " + line);
        }
    }
}
