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
 * CPU time (user + system) of a Linux process and all its descendants, read from {@code /proc} (per thread, in
 * nanoseconds): for a multi-process server such as nginx (master + workers) the whole tree counts.
 *
 * <p>Threading: stateless; any thread.
 */
final class ProcessCpu {

    /**
     * The JVM option the harnesses start their servers with: compiler threads that never exit, so that no thread's CPU
     * time drops out of {@link #treeCpuNanos} between two readings.
     */
    static final String FIXED_COMPILER_THREADS = "-XX:-UseDynamicNumberOfCompilerThreads";

    /** USER_HZ of /proc: 100 on every Linux architecture that Java runs on. */
    private static final long TICKS_PER_SECOND = 100;

    private ProcessCpu() {
    }

    /**
     * CPU nanoseconds used so far by {@code pid} and its live descendants; 0 when the process is gone. Each process
     * counts the on-CPU time of its live threads from {@code /proc/PID/task/TID/schedstat} (the scheduler's own
     * nanosecond sum, user and kernel time together), so that one storm of 1,000 handshakes is resolved to well under
     * a microsecond per handshake (the tick-based {@code utime + stime} of {@code /proc/PID/stat} moves in steps of
     * 10 ms, i.e. 10 us per handshake). A thread that exits between two readings takes its time with it: the
     * harnesses start their JVMs with a fixed number of compiler threads, and Netty's and nginx's threads live as long
     * as their process. Falls back to the ticks of {@code /proc/PID/stat} where schedstat is missing.
     */
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
            if (ticks.containsKey(id)) {
                long runtime = tasksRuntimeNanos(id);
                sum += runtime >= 0 ? runtime : ticks.get(id) * (1_000_000_000L / TICKS_PER_SECOND);
            }
            todo.addAll(children.getOrDefault(id, List.of()));
        }
        return sum;
    }

    /** The summed schedstat run time of the live threads of {@code pid}, or -1 when schedstat cannot be read. */
    private static long tasksRuntimeNanos(long pid) {
        long[] sum = {0};
        try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            tasks.forEach(t -> sum[0] += Math.max(0, schedRuntimeNanos(t)));
        } catch (IOException | java.io.UncheckedIOException e) {
            return -1;
        }
        return Files.isReadable(Path.of("/proc", Long.toString(pid), "schedstat")) ? sum[0] : -1;
    }

    /** A thread's on-CPU nanoseconds (first field of its schedstat), or -1 when the thread is gone. */
    private static long schedRuntimeNanos(Path task) {
        try {
            String s = Files.readString(task.resolve("schedstat"));
            return Long.parseLong(s.substring(0, s.indexOf(' ')));
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /** Thread groups of {@link #threadGroupNanos}, in the order the harness prints them. */
    static final List<String> THREAD_GROUPS = List.of("loop", "workers", "gc", "jit", "other");

    /**
     * CPU nanoseconds used so far by each thread of the JVM {@code pid}, summed per group of thread names: "loop"
     * (Netty event loops), "workers" (the library's engine workers, named {@code asyncctx-...}), "gc", "jit" (C1/C2
     * compiler threads) and "other" (main, VM and service threads). Threads that ended are missing, so a group's
     * figure is comparable only between two readings with the same threads alive. Empty when the process is gone.
     */
    static Map<String, Long> threadGroupNanos(long pid) {
        Map<String, Long> groups = new HashMap<>();
        try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            tasks.forEach(t -> {
                long runtime = schedRuntimeNanos(t);
                if (runtime >= 0) {
                    groups.merge(threadGroup(comm(t)), runtime, Long::sum);
                }
            });
        } catch (IOException | java.io.UncheckedIOException e) {
            return Map.of();
        }
        return groups;
    }

    /** The group of a thread's name as /proc shows it (at most 15 characters). */
    static String threadGroup(String comm) {
        if (comm.startsWith("multiThreadIoEv") || comm.contains("EventLoop")) {
            return "loop";
        } else if (comm.startsWith("asyncctx-")) {
            return "workers";
        } else if (comm.startsWith("GC Thread") || comm.startsWith("G1 ")) {
            return "gc";
        } else if (comm.startsWith("C1 Compiler") || comm.startsWith("C2 Compiler")) {
            return "jit";
        }
        return "other";
    }

    private static String comm(Path task) {
        try {
            return Files.readString(task.resolve("comm")).strip();
        } catch (IOException e) {
            return "";
        }
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
