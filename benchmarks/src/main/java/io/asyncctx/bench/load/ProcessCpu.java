package io.asyncctx.bench.load;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * CPU time (user + system) of a Linux process and all its descendants, read from {@code /proc/PID/stat}: for a
 * multi-process server such as nginx (master + workers) the whole tree counts.
 *
 * <p>Threading: stateless; any thread.
 */
final class ProcessCpu {

    /** USER_HZ of /proc: 100 on every Linux architecture that Java runs on. */
    private static final long TICKS_PER_SECOND = 100;

    private ProcessCpu() {
    }

    /** CPU nanoseconds used so far by {@code pid} and its live descendants; 0 when the process is gone. */
    static long treeCpuNanos(long pid) {
        Map<Long, List<Long>> children = new HashMap<>();
        Map<Long, Long> ticks = new HashMap<>();
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            procs.filter(p -> p.getFileName().toString().chars().allMatch(Character::isDigit)).forEach(p -> {
                long[] st = stat(p.resolve("stat"));
                if (st != null) {
                    long id = Long.parseLong(p.getFileName().toString());
                    ticks.put(id, st[1]);
                    children.computeIfAbsent(st[0], k -> new ArrayList<>()).add(id);
                }
            });
        } catch (IOException e) {
            return 0;
        }
        long sum = 0;
        List<Long> todo = new ArrayList<>(List.of(pid));
        while (!todo.isEmpty()) {
            long id = todo.remove(todo.size() - 1);
            sum += ticks.getOrDefault(id, 0L);
            todo.addAll(children.getOrDefault(id, List.of()));
        }
        return sum * (1_000_000_000L / TICKS_PER_SECOND);
    }

    /** {ppid, utime + stime in ticks}, or null when the file is gone. */
    private static long[] stat(Path stat) {
        try {
            String s = Files.readString(stat);
            // The command name may hold spaces and parentheses: fields start after the last ')'.
            String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
            // f[0] = state (field 3), f[1] = ppid (4), f[11] = utime (14), f[12] = stime (15)
            return new long[] {Long.parseLong(f[1]), Long.parseLong(f[11]) + Long.parseLong(f[12])};
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }
}
