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
}
