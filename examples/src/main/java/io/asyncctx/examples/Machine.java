package io.asyncctx.examples;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * One line describing the machine a measurement ran on: cores, CPU model, JDK, kernel.
 *
 * <p>Threading: stateless; any thread.
 */
public final class Machine {

    private Machine() {
    }

    /** For example "2 cores (AMD EPYC 7B13), OpenJDK 64-Bit Server VM 17.0.15+6, Linux 6.18.44". */
    public static String describe() {
        return String.format(Locale.ROOT, "%d cores (%s), %s %s, %s %s", Runtime.getRuntime().availableProcessors(),
                cpuModel(), System.getProperty("java.vm.name"), System.getProperty("java.runtime.version"),
                System.getProperty("os.name"), System.getProperty("os.version"));
    }

    /** The 1-minute load average from /proc/loadavg (other processes competing for the cores), or NaN. */
    public static double loadAverage() {
        try {
            return Double.parseDouble(Files.readString(Path.of("/proc/loadavg")).split(" ")[0]);
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
        }
    }

    /** The CPU model from /proc/cpuinfo, or "unknown CPU". */
    public static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or not readable: say so below
        }
        return "unknown CPU";
    }
}
