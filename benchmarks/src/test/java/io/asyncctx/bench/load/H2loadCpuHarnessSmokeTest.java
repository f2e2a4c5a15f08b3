package io.asyncctx.bench.load;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class H2loadCpuHarnessSmokeTest {

    @Test
    void shouldReadProcessCpuInNanosecondsNotClockTicks() {
        long pid = ProcessHandle.current().pid();
        long own = ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime();
        long first = ProcessCpu.treeCpuNanos(pid);
        assertTrue(first >= own, "the process's CPU (" + first + " ns) counts at least this thread's (" + own + ")");
        long x = 0;
        while (ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime() - own < 2_000_000) {
            x += Long.numberOfTrailingZeros(x + 1); // some CPU work
        }
        long second = ProcessCpu.treeCpuNanos(pid);
        assertTrue(second > first, "CPU time grew: " + first + " -> " + second + " (" + x + ")");
        // Tick-based /proc/PID/stat moves in steps of 10 ms; the scheduler's sums are nanoseconds.
        assertTrue(first % 10_000_000 != 0 || second % 10_000_000 != 0, first + ", " + second);
    }

    @Test
    void shouldGroupThreadsByTheNamesLinuxShows() {
        // /proc/PID/task/TID/comm holds at most 15 characters of the Java thread name
        assertEquals("loop", ProcessCpu.threadGroup("multiThreadIoEv"));
        assertEquals("loop", ProcessCpu.threadGroup("epollEventLoopG"));
        assertEquals("workers", ProcessCpu.threadGroup("asyncctx-softwa"));
        assertEquals("gc", ProcessCpu.threadGroup("GC Thread#0"));
        assertEquals("gc", ProcessCpu.threadGroup("G1 Conc#0"));
        assertEquals("jit", ProcessCpu.threadGroup("C2 CompilerThre"));
        assertEquals("other", ProcessCpu.threadGroup("java"));
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void shouldWriteEveryRoundAndTheMediansOfTwoServersMeasuredWithH2load(@TempDir Path out) throws Exception {
        int code = new CommandLine(new H2loadCpuHarness()).execute("--key-types", "ec", "--modes",
                "inline,offload-fd", "--nginx", "none", "--rounds", "2", "--warmup-rounds", "1", "--connections", "20",
                "--requests", "20", "--out", out.toString(), "--name", "smoke");
        assertEquals(0, code, "harness exit code");

        List<String> rounds = Files.readAllLines(out.resolve("smoke-rounds.csv"));
        assertEquals(1 + 2 * 2, rounds.size(), "header and 2 servers x 2 rounds: " + rounds);
        List<String> header = List.of(rounds.get(0).split(","));
        for (String line : rounds.subList(1, rounds.size())) {
            String[] row = line.split(",");
            assertEquals(20, Long.parseLong(row[header.indexOf("succeeded")]), "every request succeeded: " + line);
            assertTrue(Double.parseDouble(row[header.indexOf("cpu_us_per_handshake")]) > 0, "server CPU: " + line);
            for (String group : ProcessCpu.THREAD_GROUPS) {
                // a Java server's CPU split by thread group: every group has a figure (0 when it did nothing)
                assertTrue(Double.parseDouble(row[header.indexOf(group + "_us")]) >= 0, group + ": " + line);
            }
        }
        // The order rotates: each server went first in one of the two rounds.
        long firsts = rounds.stream().skip(1).map(l -> l.split(",")).filter(r -> r[3].equals("0"))
                .map(r -> r[1]).distinct().count();
        assertEquals(2, firsts, "each server first once: " + rounds);

        List<String> summary = Files.readAllLines(out.resolve("smoke.csv"));
        assertEquals(3, summary.size(), "header and one row per server: " + summary);
        List<String> sh = List.of(summary.get(0).split(","));
        String[] inline = summary.get(1).split(",");
        assertEquals("inline", inline[sh.indexOf("server")]);
        assertEquals(1.0, Double.parseDouble(inline[sh.indexOf("vs_inline_median")]), 1e-9);
        String[] fd = summary.get(2).split(",");
        assertEquals("offload-fd", fd[sh.indexOf("server")]);
        assertEquals("2", fd[sh.indexOf("rounds")]);
        double median = Double.parseDouble(fd[sh.indexOf("cpu_us_median")]);
        assertTrue(sh.contains("workers_us_median") && !fd[sh.indexOf("workers_us_median")].isEmpty(),
                "per-thread-group medians: " + summary);
        assertTrue(Double.parseDouble(fd[sh.indexOf("cpu_us_min")]) <= median
                && median <= Double.parseDouble(fd[sh.indexOf("cpu_us_max")]), "min <= median <= max: " + summary);
    }
}
