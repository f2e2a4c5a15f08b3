package io.asyncctx.bench.load;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * What the load harnesses share on their command lines: the key type and engine kind as picocli enums (validated and
 * listed in {@code --help} before any work starts), the engine's worker count with one default, storm rates parsed
 * once, and a server command split the way a shell would.
 *
 * <p>Threading: the option objects are filled by picocli on the main thread and read there.
 */
final class HarnessOptions {

    private HarnessOptions() {
    }

    /** The generated certificate's key. */
    enum KeyType {
        /** RSA-2048. */
        rsa("RSA-2048"),
        /** ECDSA P-256. */
        ec("P-256");

        final String label;

        KeyType(String label) {
            this.label = label;
        }
    }

    /** The engine behind the example server's offload modes. */
    enum EngineKind {
        /** SoftwareEngine: AWS-LC (or the JDK) on worker threads. */
        software,
        /** SimulatedAcceleratorEngine: a real signature after a fixed latency (--latency-ms). */
        simulated
    }

    /** The software engine's workers, one default for every harness. A picocli mixin. */
    static final class Workers {
        @Option(names = "--workers", description = "Software engine workers (default: ${DEFAULT-VALUE}, the cores).")
        int workers = Runtime.getRuntime().availableProcessors();

        int validated(CommandLine.Model.CommandSpec spec) {
            if (workers < 1) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--workers " + workers
                        + ": expected 1 or more");
            }
            return workers;
        }
    }

    /**
     * A storm rate: 0 for no limit, N handshakes/s, or P% of the unlimited rate the first server reached earlier in
     * the same invocation.
     */
    record Rate(String spec, double value, boolean percent) {

        /** The rate in handshakes/s given the first server's unlimited rate (for a percentage). */
        double resolve(double firstUnlimited) {
            return percent ? value / 100 * firstUnlimited : value;
        }

        boolean unlimited() {
            return !percent && value == 0;
        }

        @Override
        public String toString() {
            return spec;
        }
    }

    /** Parses {@code --rate} values once, at the command line. */
    static final class RateConverter implements CommandLine.ITypeConverter<Rate> {
        @Override
        public Rate convert(String s) {
            String t = s.trim();
            boolean percent = t.endsWith("%");
            double v;
            try {
                v = Double.parseDouble(percent ? t.substring(0, t.length() - 1) : t);
            } catch (NumberFormatException e) {
                v = Double.NaN;
            }
            if (!(v >= 0) || Double.isInfinite(v)) {
                throw new CommandLine.TypeConversionException("'" + s + "': expected 0 (no limit), handshakes/s, or "
                        + "P% of the first server's unlimited rate");
            }
            return new Rate(t, v, percent);
        }
    }

    /** Checks that a percentage rate comes after an unlimited one. */
    static void checkRates(CommandLine.Model.CommandSpec spec, List<Rate> rates) {
        boolean unlimitedSeen = false;
        for (Rate r : rates) {
            if (r.percent() && !unlimitedSeen) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--rate " + r + ": a percentage needs "
                        + "an unlimited run (0) earlier in the list, e.g. --rate 0," + r);
            }
            unlimitedSeen |= r.unlimited();
        }
    }

    /**
     * Splits a command line as a POSIX shell would for words: whitespace separates, single quotes keep everything,
     * double quotes keep everything but a backslash before {@code "} or {@code \}, a backslash outside quotes escapes
     * the next character. No expansion of any kind.
     *
     * @throws IllegalArgumentException for an unterminated quote or a trailing backslash
     */
    static List<String> splitCommand(String line) {
        List<String> words = new ArrayList<>();
        StringBuilder w = new StringBuilder();
        boolean inWord = false;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (Character.isWhitespace(c)) {
                if (inWord) {
                    words.add(w.toString());
                    w.setLength(0);
                    inWord = false;
                }
            } else if (c == '\'') {
                int end = line.indexOf('\'', i + 1);
                if (end < 0) {
                    throw new IllegalArgumentException("unterminated ' in: " + line);
                }
                w.append(line, i + 1, end);
                i = end;
                inWord = true;
            } else if (c == '"') {
                int j = i + 1;
                for (; j < line.length() && line.charAt(j) != '"'; j++) {
                    char d = line.charAt(j);
                    if (d == '\\' && j + 1 < line.length() && (line.charAt(j + 1) == '"' || line.charAt(j + 1) == '\\')) {
                        w.append(line.charAt(++j));
                    } else {
                        w.append(d);
                    }
                }
                if (j >= line.length()) {
                    throw new IllegalArgumentException("unterminated \" in: " + line);
                }
                i = j;
                inWord = true;
            } else if (c == '\\') {
                if (i + 1 >= line.length()) {
                    throw new IllegalArgumentException("trailing \\ in: " + line);
                }
                w.append(line.charAt(++i));
                inWord = true;
            } else {
                w.append(c);
                inWord = true;
            }
        }
        if (inWord) {
            words.add(w.toString());
        }
        return words;
    }

    /**
     * The nginx to measure: {@code given} when set (it must be executable: a path that is not is refused, not
     * skipped), "none" to skip, or the default path when it exists (said either way).
     *
     * @return the binary, or null for none
     */
    static Path nginx(CommandLine.Model.CommandSpec spec, String given, Path defaultPath) {
        if (given != null) {
            if (given.equals("none")) {
                return null;
            }
            Path p = Path.of(given);
            if (!Files.isExecutable(p)) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--nginx " + given + ": not an "
                        + "executable file (install nginx, give its path, or 'none' to skip it)");
            }
            return p;
        }
        if (Files.isExecutable(defaultPath)) {
            return defaultPath;
        }
        System.out.println(String.format(Locale.ROOT, "nginx: %s not found, not measured (--nginx PATH to give one)",
                defaultPath));
        return null;
    }
}
