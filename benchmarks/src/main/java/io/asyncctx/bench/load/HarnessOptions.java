package io.asyncctx.bench.load;

import io.asyncctx.engine.KeyMatch;
import io.asyncctx.engine.PemKeys;
import io.netty.pkitesting.CertificateBuilder;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * What the load tools share on their command lines ({@link LoadHarness}, {@link H2loadCpuHarness},
 * {@link LoadServer}, {@link ReactorLoadServer}, {@link QuicHandshakeBench}, {@link PausedHandshakesProbe}): the key
 * type and engine kind as picocli enums, the options the servers take as mixins with one default and one check
 * ({@link Workers}, {@link Loops}, {@link InlineBelow}, {@link HandshakeSteps}), converters that refuse a value out of
 * range while picocli parses, storm rates parsed once, the PEM files read and matched before anything starts, and a
 * server command split the way a shell would. Whatever picocli cannot check alone each command checks in one step at
 * the start of its {@code call()}, before it writes, binds or spawns anything; {@link #commandLine} prints a refusal as
 * one line that names the option and says what to give, exit code 2.
 *
 * <p>Threading: the option objects are filled by picocli on the main thread and read there.
 */
final class HarnessOptions {

    private HarnessOptions() {
    }

    /**
     * The command line of a load tool: a value picocli or the tool's own check refuses prints one line (the message,
     * which names the option and says what to give; for an unknown option, the nearest known ones) instead of the
     * whole usage, and {@code execute} returns 2.
     */
    static CommandLine commandLine(Object command) {
        CommandLine cl = new CommandLine(command);
        cl.setParameterExceptionHandler((e, args) -> {
            CommandLine cmd = e.getCommandLine();
            String hint = e instanceof CommandLine.UnmatchedArgumentException u && !u.getSuggestions().isEmpty()
                    ? " (did you mean " + String.join(" or ", u.getSuggestions()) + "?)"
                    : "; see " + cmd.getCommandSpec().qualifiedName() + " --help";
            cmd.getErr().println(e.getMessage().replace('\n', ' ').strip() + hint);
            cmd.getErr().flush();
            return cmd.getCommandSpec().exitCodeOnInvalidInput();
        });
        return cl;
    }

    /** A refusal of this command's options, printed by {@link #commandLine} as one line. */
    static CommandLine.ParameterException refuse(CommandLine.Model.CommandSpec spec, String message) {
        return new CommandLine.ParameterException(spec.commandLine(), message);
    }

    /** The generated certificate's key. */
    enum KeyType {
        /** RSA-2048. */
        rsa("RSA-2048", CertificateBuilder.Algorithm.rsa2048),
        /** ECDSA P-256. */
        ec("P-256", CertificateBuilder.Algorithm.ecp256);

        final String label;
        final CertificateBuilder.Algorithm algorithm;

        KeyType(String label, CertificateBuilder.Algorithm algorithm) {
            this.label = label;
            this.algorithm = algorithm;
        }
    }

    /** The engine behind the example server's offload modes. */
    enum EngineKind {
        /** SoftwareEngine: AWS-LC (or the JDK) on worker threads. */
        software,
        /** SimulatedAcceleratorEngine: a real signature after a fixed latency (--latency-ms). */
        simulated
    }

    /** The software engine's workers, one default for every harness and server. A picocli mixin. */
    static final class Workers {
        @Option(names = "--workers", converter = OneOrMore.class,
                description = "Software engine workers (default: ${DEFAULT-VALUE}, the cores).")
        int workers = Runtime.getRuntime().availableProcessors();
    }

    /** The server's event loops, one default for every harness and server. A picocli mixin. */
    static final class Loops {
        @Option(names = "--threads", converter = OneOrMore.class,
                description = "Server event loops (default: ${DEFAULT-VALUE}).")
        int threads = 1;
    }

    /** The inline policy's threshold of the modes that have one. A picocli mixin. */
    static final class InlineBelow {
        /** Keeps ECDSA P-256 / Ed25519 inline, offloads RSA. */
        static final long DEFAULT_MICROS = 30;

        @Option(names = "--inline-below-us", converter = ZeroOrMoreLong.class, description = "Modes offload-fd-inline "
                + "and reactor-offload-inline: sign inline the signature schemes whose measured cost is below this "
                + "many microseconds, InlinePolicy.belowMeasuredCost (default: ${DEFAULT-VALUE}).")
        long micros = DEFAULT_MICROS;
    }

    /** The handshake steps per event-loop turn of mode offload-fd-fair. A picocli mixin. */
    static final class HandshakeSteps {
        /** The bound of mode offload-fd-fair unless given. */
        static final int DEFAULT = 2;

        @Option(names = "--handshake-steps-per-turn", converter = OneOrMore.class, description = "Mode "
                + "offload-fd-fair: handshake steps per server event-loop iteration, "
                + "OffloadConfig.handshakeStepsPerLoopTurn (default: ${DEFAULT-VALUE}).")
        int steps = DEFAULT;
    }

    /** An int of at least {@code min}, refused while picocli parses; the subclasses fix {@code min}. */
    abstract static class AtLeast implements CommandLine.ITypeConverter<Integer> {
        private final int min;

        AtLeast(int min) {
            this.min = min;
        }

        @Override
        public Integer convert(String s) {
            int v;
            try {
                v = Integer.parseInt(s.trim());
            } catch (NumberFormatException e) {
                throw new CommandLine.TypeConversionException("'" + s + "': expected a whole number of " + min
                        + " or more");
            }
            if (v < min) {
                throw new CommandLine.TypeConversionException("'" + s + "': expected " + min + " or more");
            }
            return v;
        }
    }

    /** A count of 1 or more. */
    static final class OneOrMore extends AtLeast {
        OneOrMore() {
            super(1);
        }
    }

    /** A count of 0 or more. */
    static final class ZeroOrMore extends AtLeast {
        ZeroOrMore() {
            super(0);
        }
    }

    /** A long of 0 or more. */
    static final class ZeroOrMoreLong implements CommandLine.ITypeConverter<Long> {
        @Override
        public Long convert(String s) {
            long v;
            try {
                v = Long.parseLong(s.trim());
            } catch (NumberFormatException e) {
                v = -1;
            }
            if (v < 0) {
                throw new CommandLine.TypeConversionException("'" + s + "': expected a whole number of 0 or more");
            }
            return v;
        }
    }

    /** A TCP port to bind, 0 for any free one. */
    static final class Port extends AtLeast {
        Port() {
            super(0);
        }

        @Override
        public Integer convert(String s) {
            int v = super.convert(s);
            if (v > 65535) {
                throw new CommandLine.TypeConversionException("'" + s + "': expected a port of 0 (any free one) to "
                        + "65535");
            }
            return v;
        }
    }

    /** Seconds of 0 or more (a fraction allowed). */
    static class Seconds implements CommandLine.ITypeConverter<Double> {
        @Override
        public Double convert(String s) {
            double v;
            try {
                v = Double.parseDouble(s.trim());
            } catch (NumberFormatException e) {
                v = Double.NaN;
            }
            if (!(v >= 0) || Double.isInfinite(v)) {
                throw new CommandLine.TypeConversionException("'" + s + "': expected seconds, 0 or more");
            }
            return v;
        }
    }

    /** Seconds above 0 (a fraction allowed). */
    static final class PositiveSeconds extends Seconds {
        @Override
        public Double convert(String s) {
            double v = super.convert(s);
            if (v == 0) {
                throw new CommandLine.TypeConversionException("'" + s + "': expected seconds above 0");
            }
            return v;
        }
    }

    /**
     * One of a fixed list of names, refused while picocli parses and listed as the completion candidates in
     * {@code --help}; the subclasses fix the list.
     */
    abstract static class OneOf implements CommandLine.ITypeConverter<String>, Iterable<String> {
        private final List<String> names;

        OneOf(List<String> names) {
            this.names = names;
        }

        @Override
        public String convert(String s) {
            if (!names.contains(s)) {
                throw new CommandLine.TypeConversionException("'" + s + "': expected one of " + names);
            }
            return s;
        }

        @Override
        public Iterator<String> iterator() {
            return names.iterator();
        }
    }

    /** A certificate chain and its private key, read from PEM files and matched. */
    record Pem(Path certFile, Path keyFile, X509Certificate[] chain, PrivateKey key) {
    }

    /**
     * Reads {@code --cert} and {@code --key} and checks that the key belongs to the certificate, so that a missing,
     * unreadable or mismatched file is refused before anything starts, naming the option.
     */
    static Pem readPem(CommandLine.Model.CommandSpec spec, Path cert, Path key) {
        X509Certificate[] chain;
        PrivateKey pk;
        try {
            chain = PemKeys.readCertificates(cert).toArray(new X509Certificate[0]);
        } catch (Exception e) {
            throw refuse(spec, "--cert " + cert + ": " + reason(e, "give a PEM certificate chain, leaf first"));
        }
        try {
            pk = PemKeys.readPrivateKey(key);
        } catch (Exception e) {
            throw refuse(spec, "--key " + key + ": " + reason(e, "give the PEM private key of --cert"));
        }
        boolean match;
        try {
            match = KeyMatch.matches(pk, chain[0].getPublicKey());
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            throw refuse(spec, "--key " + key + ": cannot sign with it: " + reason(e, "give an RSA, EC or Ed25519 "
                    + "key"));
        }
        if (!match) {
            throw refuse(spec, "--key " + key + " does not belong to --cert " + cert + ": give the key of that "
                    + "certificate");
        }
        return new Pem(cert.toAbsolutePath(), key.toAbsolutePath(), chain, pk);
    }

    /** Why a file was refused: PemKeys' message (it says what was expected), or the I/O failure and {@code what}. */
    private static String reason(Exception e, String what) {
        String m = e instanceof java.nio.file.NoSuchFileException ? "no such file (" + what + ")"
                : e instanceof java.nio.file.AccessDeniedException ? "not readable (" + what + ")"
                : e instanceof IllegalArgumentException && e.getMessage() != null ? e.getMessage()
                : e + " (" + what + ")";
        return m.replace('\n', ' ');
    }

    /** Refuses a file name stem that is empty or names a directory: the files are written after the run. */
    static void checkName(CommandLine.Model.CommandSpec spec, String name) {
        if (name.isBlank() || name.contains("/") || name.contains(File.separator) || name.equals(".")
                || name.equals("..")) {
            throw refuse(spec, "--name '" + name + "': expected a file name stem without a directory (use --out for "
                    + "the directory)");
        }
    }

    /** Refuses an output directory that is an existing file (the tool would find out only when it writes). */
    static void checkOut(CommandLine.Model.CommandSpec spec, Path out) {
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw refuse(spec, "--out " + out + ": a file, not a directory (give a directory, it is created when "
                    + "missing)");
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
                throw refuse(spec, "--rate " + r + ": a percentage needs an unlimited run (0) earlier in the list, "
                        + "e.g. --rate 0," + r);
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
     * The nginx to measure: {@code given} when set (a path, or a name on PATH; one that is not executable is refused,
     * not skipped), "none" to skip, or the default path when it exists (said either way).
     *
     * @return the binary, or null for none
     */
    static Path nginx(CommandLine.Model.CommandSpec spec, String given, Path defaultPath) {
        if (given != null) {
            if (given.equals("none")) {
                return null;
            }
            Path p = findExecutable(given);
            if (p == null) {
                throw refuse(spec, "--nginx " + given + ": " + (given.contains("/") ? "not an executable file"
                        : "not found on PATH") + " (install nginx, give its path, or 'none' to skip it)");
            }
            return p;
        }
        if (isExecutableFile(defaultPath)) {
            return defaultPath;
        }
        System.out.println(String.format(Locale.ROOT, "nginx: %s not found, not measured (--nginx PATH to give one)",
                defaultPath));
        return null;
    }

    /**
     * The program {@code command} names, found as a shell would find it: a name with a slash as that path, any other
     * name in the directories of PATH; null when there is none, or it is not an executable file.
     */
    static Path findExecutable(String command) {
        if (command.isEmpty()) {
            return null;
        }
        if (command.contains("/")) {
            Path p = Path.of(command);
            return isExecutableFile(p) ? p : null;
        }
        String path = System.getenv("PATH");
        for (String dir : (path == null ? "" : path).split(File.pathSeparator)) {
            Path p = Path.of(dir.isEmpty() ? "." : dir, command);
            if (isExecutableFile(p)) {
                return p;
            }
        }
        return null;
    }

    /** Refuses {@code option}'s program when {@link #findExecutable} finds none; {@code install} says what to do. */
    static void checkExecutable(CommandLine.Model.CommandSpec spec, String option, String command, String install) {
        if (findExecutable(command) == null) {
            throw refuse(spec, option + " " + command + ": " + (command.contains("/") ? "not an executable file"
                    : "not found on PATH") + " (" + install + ")");
        }
    }

    private static boolean isExecutableFile(Path p) {
        return Files.isRegularFile(p) && Files.isExecutable(p);
    }
}
