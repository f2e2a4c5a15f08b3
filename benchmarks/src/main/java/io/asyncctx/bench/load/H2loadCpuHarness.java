package io.asyncctx.bench.load;

import io.asyncctx.bench.load.ServerProcesses.Running;
import io.asyncctx.examples.Machine;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Server CPU per TLS handshake measured with h2load, a client nobody here wrote: every server of one key type (the
 * example server in each {@code --modes} mode, each in its own JVM, and nginx with the same certificate, one worker,
 * no session cache or tickets) is started at once, then h2load storms ({@code h2load -c C -n N --h1}: C new
 * connections, one full TLS 1.3 handshake and one request each) are run against them in turn, the order rotating
 * every round so that no server always follows the same one. Each storm's figure is the server process tree's CPU
 * time (user + system, from /proc) divided by the requests that succeeded; for the Java servers it is also split by
 * thread group (event loop, engine workers, GC, JIT, other), so that a difference between two modes can be traced to
 * the threads that spend it. Warm-up rounds (the JIT compiles the
 * handshake path for thousands of handshakes: measured before that, C2 was most of the server's CPU) are run first
 * and not kept. Writes every round ({@code NAME-rounds.csv}) and per server the median, quartiles, extremes and
 * ratios ({@code NAME.csv}); a storm in which h2load saw failed requests is left out of the summary (its CPU bought
 * fewer handshakes) and counted there.
 *
 * <p>Threading: runs on the main thread; every wait is bounded.
 */
@Command(name = "H2loadCpuHarness", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Server CPU per handshake under h2load storms, servers side by side, storms alternated.")
public final class H2loadCpuHarness implements Callable<Integer> {

    private static final Pattern REQUESTS = Pattern.compile("requests: (\\d+) total, \\d+ started, \\d+ done, "
            + "(\\d+) succeeded, (\\d+) failed");
    private static final Pattern FINISHED = Pattern.compile("finished in ([0-9.]+)(ms|s)");
    private static final String NGINX = "nginx";

    @Option(names = "--key-types", split = ",", description = "rsa (RSA-2048) and/or ec (ECDSA P-256); each gets "
            + "its own set of servers (default: ${DEFAULT-VALUE}).")
    List<HarnessOptions.KeyType> keyTypes = List.of(HarnessOptions.KeyType.ec, HarnessOptions.KeyType.rsa);

    @Option(names = "--modes", split = ",", description = "Example-server modes (see LoadHarness --modes), and "
            + "Reactor Netty servers (reactor-stock, reactor-offload, reactor-offload-inline: ReactorLoadServer) "
            + "(default: ${DEFAULT-VALUE}).")
    List<String> modes = List.of("inline", "offload-fd", "offload-fd-inline");

    @Option(names = "--nginx", description = "nginx binary to measure too (refused when not executable); 'none' to "
            + "skip (default: /usr/sbin/nginx when it exists).")
    String nginx;

    @Option(names = "--h2load", description = "h2load binary (default: ${DEFAULT-VALUE}).")
    String h2load = "h2load";

    @Option(names = "--rounds", converter = HarnessOptions.OneOrMore.class,
            description = "Measured rounds (default: ${DEFAULT-VALUE}).")
    int rounds = 7;

    @Option(names = "--warmup-rounds", converter = HarnessOptions.ZeroOrMore.class, description = "Unmeasured "
            + "rounds first (default: ${DEFAULT-VALUE}): a server's CPU per handshake falls for its first ~14 storms "
            + "(C2 compiling) before it levels off, and after 20 rounds the JIT threads still took 10-60 us per "
            + "handshake in some storms of the offload modes.")
    int warmupRounds = 40;

    @Option(names = "--connections", converter = HarnessOptions.OneOrMore.class,
            description = "h2load -c: connections per storm (default: ${DEFAULT-VALUE}).")
    int connections = 1000;

    @Option(names = "--requests", converter = HarnessOptions.OneOrMore.class, description = "h2load -n: requests "
            + "per storm, --connections or more; one per connection when equal to --connections "
            + "(default: ${DEFAULT-VALUE}).")
    int requests = 1000;

    @Option(names = "--server-classpath", description = "LABEL=CLASSPATH: run every mode also from this class path "
            + "(for example a benchmarks.jar built before a change), labelled MODE@LABEL; repeatable. Without it the "
            + "modes run from this harness's own class path.")
    Map<String, String> serverClasspaths = new LinkedHashMap<>();

    @CommandLine.Mixin
    HarnessOptions.Workers workers = new HarnessOptions.Workers();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @CommandLine.Mixin
    HarnessOptions.InlineBelow inlineBelow = new HarnessOptions.InlineBelow();

    @Option(names = "--out", description = "Directory for the CSVs (default: ${DEFAULT-VALUE}).")
    Path out = Path.of("results");

    @Option(names = "--name", description = "File name stem of the CSVs (default: ${DEFAULT-VALUE}).")
    String name = "h2load-cpu";

    /** Runs the harness; exits with its code. */
    public static void main(String[] args) {
        System.exit(HarnessOptions.commandLine(new H2loadCpuHarness()).execute(args));
    }

    /** One storm against one server. */
    record Storm(String key, String server, int round, int order, long succeeded, long failed, double seconds,
                 double cpuMicrosPerHandshake, double loadAverage, Map<String, Double> threadMicrosPerHandshake) {
    }

    @Override
    public Integer call() throws Exception {
        Path nginxBinary = validate();
        // From here on, work: the output directory, the certificates, the servers.
        int engineWorkers = workers.workers;
        boolean withNginx = nginxBinary != null;
        Files.createDirectories(out);
        System.out.println("machine: " + Machine.describe() + ", load average before: " + Machine.loadAverage());
        System.out.printf(Locale.ROOT, "h2load -c %d -n %d --h1; modes %s%s; %d warm-up + %d measured rounds, "
                        + "order rotating; software engine with %d workers, 1 event loop%n", connections, requests,
                modes, withNginx ? " + nginx (" + nginxBinary + ")" : " (no nginx)", warmupRounds, rounds, engineWorkers);
        List<Storm> storms = new ArrayList<>();
        for (HarnessOptions.KeyType keyType : keyTypes) {
            storms.addAll(runKey(keyType, nginxBinary, engineWorkers));
        }
        List<String> summary = summarize(storms);
        long failedRounds = storms.stream().filter(s -> s.failed() > 0).count();
        if (failedRounds > 0) {
            System.out.println(failedRounds + " storm(s) had failed requests (h2load timeouts on a busy machine?): "
                    + "kept in the rounds CSV, left out of the medians");
        }
        writeCsv(out.resolve(name + "-rounds.csv"), "key,server,round,order,succeeded,failed,seconds,"
                + "handshakes_per_s,cpu_us_per_handshake,load_average_1m," + threadColumns(""), storms.stream()
                .map(s -> String.format(Locale.ROOT, "%s,%s,%d,%d,%d,%d,%.3f,%.1f,%.1f,%.2f,%s", s.key(), s.server(),
                        s.round(), s.order(), s.succeeded(), s.failed(), s.seconds(), s.succeeded() / s.seconds(),
                        s.cpuMicrosPerHandshake(), s.loadAverage(), threadValues(s))).toList());
        writeCsv(out.resolve(name + ".csv"), "key,server,rounds,rounds_with_failures_left_out,cpu_us_median,cpu_us_p25,cpu_us_p75,cpu_us_min,"
                + "cpu_us_max,handshakes_per_s_median,vs_inline_median,vs_inline_paired_median,vs_nginx_median,"
                + "load_average_median," + threadColumns("_median"), summary);
        System.out.println("wrote " + out.resolve(name + ".csv") + " and " + out.resolve(name + "-rounds.csv"));
        return 0;
    }

    /**
     * Checks the whole command line, what picocli could not check option by option: nothing is written, generated or
     * spawned before every option is known to be good.
     *
     * @return the nginx binary to measure, or null for none
     */
    private Path validate() {
        if (requests < connections) {
            throw HarnessOptions.refuse(spec, "--requests " + requests + ": expected --connections (" + connections
                    + ") or more, one request per connection at least");
        }
        if (keyTypes.isEmpty()) {
            throw HarnessOptions.refuse(spec, "--key-types: expected rsa, ec or both");
        }
        if (modes.isEmpty()) {
            throw HarnessOptions.refuse(spec, "--modes: expected one or more of " + LoadServer.MODES + " or "
                    + ReactorLoadServer.MODES);
        }
        for (String mode : modes) {
            if (!LoadServer.MODES.contains(mode) && !ReactorLoadServer.MODES.contains(mode)) {
                throw HarnessOptions.refuse(spec, "--modes " + mode + ": expected one of " + LoadServer.MODES + " or "
                        + ReactorLoadServer.MODES);
            }
        }
        for (Map.Entry<String, String> cp : serverClasspaths.entrySet()) {
            String option = "--server-classpath " + cp.getKey() + "=" + cp.getValue();
            if (!cp.getKey().matches("[A-Za-z0-9._-]+")) {
                throw HarnessOptions.refuse(spec, option + ": expected a LABEL of letters, digits, '.', '_' or '-' "
                        + "(it names the servers in the CSVs)");
            }
            for (String entry : cp.getValue().split(File.pathSeparator, -1)) {
                Path p = Path.of(entry.endsWith("*") ? entry.substring(0, entry.length() - 1) + "." : entry);
                if (entry.isEmpty() || !Files.exists(p)) {
                    throw HarnessOptions.refuse(spec, option + ": '" + entry + "' does not exist (give jars or "
                            + "directories separated by '" + File.pathSeparator + "')");
                }
            }
        }
        HarnessOptions.checkOut(spec, out);
        HarnessOptions.checkName(spec, name);
        HarnessOptions.checkExecutable(spec, "--h2load", h2load, "install nghttp2-client, e.g. apt-get "
                + "install nghttp2-client, or give --h2load PATH");
        return HarnessOptions.nginx(spec, nginx, Path.of("/usr/sbin/nginx"));
    }

    private List<Storm> runKey(HarnessOptions.KeyType keyType, Path nginxBinary, int engineWorkers)
            throws Exception {
        String keyLabel = keyType.label;
        Path certPem = out.resolve(name + "-" + keyType + "-cert.pem").toAbsolutePath();
        Path keyPem = out.resolve(name + "-" + keyType + "-key.pem").toAbsolutePath();
        LoadHarness.writeSelfSigned(keyType, certPem, keyPem);
        Map<String, Running> servers = new LinkedHashMap<>();
        List<Storm> storms = new ArrayList<>();
        try {
            for (String mode : modes) {
                boolean reactor = ReactorLoadServer.MODES.contains(mode);
                Map<String, String> classpaths = serverClasspaths.isEmpty()
                        ? Map.of("", System.getProperty("java.class.path")) : serverClasspaths;
                for (Map.Entry<String, String> cp : classpaths.entrySet()) {
                    String java = ProcessHandle.current().info().command().orElse("java");
                    List<String> cmd = new ArrayList<>(List.of(java, ProcessCpu.FIXED_COMPILER_THREADS, "-cp",
                            cp.getValue(), (reactor ? ReactorLoadServer.class : LoadServer.class).getName()));
                    cmd.addAll(serverArguments(mode, engineWorkers, certPem, keyPem));
                    servers.put(cp.getKey().isEmpty() ? mode : mode + "@" + cp.getKey(),
                            ServerProcesses.spawn(cmd, false));
                }
            }
            if (nginxBinary != null) {
                servers.put(NGINX, ServerProcesses.startNginx(nginxBinary, out.resolve(name + "-nginx-" + keyType),
                        certPem, keyPem));
            }
            List<String> names = new ArrayList<>(servers.keySet());
            for (int round = -warmupRounds; round < rounds; round++) {
                int shift = Math.floorMod(round, names.size());
                for (int i = 0; i < names.size(); i++) {
                    String server = names.get((i + shift) % names.size());
                    Storm s = storm(keyLabel, server, servers.get(server), round, i);
                    if (round >= 0) {
                        storms.add(s);
                        System.out.printf(Locale.ROOT, "%s round %d %-18s %7.1f us/handshake, %6.0f hs/s, "
                                        + "%d failed, load %.2f%n", keyLabel, round, server,
                                s.cpuMicrosPerHandshake(), s.succeeded() / s.seconds(), s.failed(), s.loadAverage());
                    }
                }
            }
        } finally {
            for (Running r : servers.values()) {
                try {
                    r.close();
                } catch (Exception e) {
                    System.err.println("stopping a server: " + e);
                }
            }
        }
        return storms;
    }

    /** The command line of one mode's server after its class name ({@link LoadServer} or {@link ReactorLoadServer}). */
    List<String> serverArguments(String mode, int engineWorkers, Path certPem, Path keyPem) {
        List<String> args = new ArrayList<>(List.of("--mode", mode));
        if (!ReactorLoadServer.MODES.contains(mode)) {
            args.addAll(List.of("--engine", HarnessOptions.EngineKind.software.name()));
        }
        args.addAll(List.of("--workers", Integer.toString(engineWorkers), "--threads", "1", "--inline-below-us",
                Long.toString(inlineBelow.micros), "--cert", certPem.toString(), "--key", keyPem.toString()));
        return args;
    }

    private Storm storm(String key, String server, Running r, int round, int order) throws Exception {
        List<String> cmd = List.of(h2load, "-c", Integer.toString(connections), "-n", Integer.toString(requests),
                "--h1", "https://" + r.host() + ":" + r.port() + "/");
        long cpuBefore = r.cpu().getAsLong();
        Map<String, Long> threadsBefore = server.equals(NGINX) ? Map.of() : ProcessCpu.threadGroupNanos(r.pid());
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new IllegalStateException("cannot run h2load (" + h2load + "): install nghttp2-client "
                    + "(apt-get install nghttp2-client) or give --h2load PATH", e);
        }
        String output;
        try (InputStream in = p.getInputStream()) {
            output = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("h2load did not end within 120 s: " + cmd);
        }
        long cpuAfter = r.cpu().getAsLong();
        Map<String, Long> threadsAfter = server.equals(NGINX) ? Map.of() : ProcessCpu.threadGroupNanos(r.pid());
        Matcher req = REQUESTS.matcher(output);
        Matcher fin = FINISHED.matcher(output);
        if (p.exitValue() != 0 || !req.find() || !fin.find()) {
            throw new IllegalStateException("h2load against " + server + " failed (exit " + p.exitValue() + "): "
                    + output);
        }
        long succeeded = Long.parseLong(req.group(2));
        long failed = Long.parseLong(req.group(3));
        if (succeeded == 0) {
            throw new IllegalStateException("no request succeeded against " + server + ": " + output);
        }
        double seconds = Double.parseDouble(fin.group(1)) / (fin.group(2).equals("ms") ? 1000 : 1);
        double cpuMicros = (cpuAfter - cpuBefore) / 1000.0 / succeeded;
        Map<String, Double> threads = new LinkedHashMap<>();
        if (!threadsBefore.isEmpty() && !threadsAfter.isEmpty()) {
            for (String group : ProcessCpu.THREAD_GROUPS) {
                threads.put(group, (threadsAfter.getOrDefault(group, 0L) - threadsBefore.getOrDefault(group, 0L))
                        / 1000.0 / succeeded);
            }
        }
        return new Storm(key, server, round, order, succeeded, failed, seconds, cpuMicros, Machine.loadAverage(),
                threads);
    }

    /** One summary row per key and server; also prints a table. */
    /** Rounds in which h2load saw failed requests are left out of the summary (and counted). */
    private static List<String> summarize(List<Storm> storms) {
        List<String> rows = new ArrayList<>();
        Map<String, Map<String, List<Storm>>> byKey = new LinkedHashMap<>();
        Map<String, Integer> excluded = new LinkedHashMap<>();
        for (Storm s : storms) {
            if (s.failed() > 0) {
                // Failed connections cost CPU that no succeeded handshake accounts for: such a round would inflate the
                // figure. It stays in the rounds CSV; the summary counts it apart.
                excluded.merge(s.key() + "," + s.server(), 1, Integer::sum);
                continue;
            }
            byKey.computeIfAbsent(s.key(), k -> new LinkedHashMap<>())
                    .computeIfAbsent(s.server(), k -> new ArrayList<>()).add(s);
        }
        for (Map.Entry<String, Map<String, List<Storm>>> k : byKey.entrySet()) {
            Map<String, List<Storm>> servers = k.getValue();
            List<Storm> inlineStorms = servers.entrySet().stream().filter(e -> e.getKey().equals("inline")
                    || e.getKey().startsWith("inline@")).map(Map.Entry::getValue).findFirst().orElse(null);
            double inline = inlineStorms != null ? median(cpu(inlineStorms)) : Double.NaN;
            double ngx = servers.containsKey(NGINX) ? median(cpu(servers.get(NGINX))) : Double.NaN;
            System.out.printf(Locale.ROOT, "%n%s: server CPU per handshake, us (median [p25-p75] min-max)%n",
                    k.getKey());
            for (Map.Entry<String, List<Storm>> e : servers.entrySet()) {
                double[] c = cpu(e.getValue());
                double med = median(c);
                double paired = inlineStorms != null ? pairedRatio(e.getValue(), inlineStorms) : Double.NaN;
                double[] hs = e.getValue().stream().mapToDouble(s -> s.succeeded() / s.seconds()).toArray();
                double[] load = e.getValue().stream().mapToDouble(Storm::loadAverage).toArray();
                String threads = threadMedians(e.getValue());
                rows.add(String.format(Locale.ROOT, "%s,%s,%d,%d,%.1f,%.1f,%.1f,%.1f,%.1f,%.0f,%.3f,%.3f,%.3f,%.2f,%s",
                        k.getKey(), e.getKey(), c.length, excluded.getOrDefault(k.getKey() + "," + e.getKey(), 0),
                        med, quantile(c, 0.25), quantile(c, 0.75), c[0], c[c.length - 1], median(hs), med / inline,
                        paired, med / ngx, median(load), threads));
                System.out.printf(Locale.ROOT, "  %-18s %7.1f [%6.1f-%6.1f] %6.1f-%6.1f  %5.2fx inline (paired "
                                + "%5.2fx)  %5.2fx nginx  %6.0f hs/s%s%n", e.getKey(), med, quantile(c, 0.25),
                        quantile(c, 0.75), c[0], c[c.length - 1], med / inline, paired, med / ngx, median(hs),
                        threads.isEmpty() || threads.startsWith(",") ? "" : "  threads " + threadLabels(threads));
            }
            for (String label : servers.keySet()) {
                String policy = label.replace("offload-fd", "offload-fd-inline");
                if (label.startsWith("offload-fd") && !label.startsWith("offload-fd-inline")
                        && servers.containsKey(policy)) {
                    System.out.printf(Locale.ROOT, "  hand-off (%s minus %s medians): %.1f us%n", label, policy,
                            median(cpu(servers.get(label))) - median(cpu(servers.get(policy))));
                }
            }
        }
        return rows;
    }

    /** CSV column names of the per-thread-group CPU, e.g. {@code loop_us,workers_us,...}. */
    private static String threadColumns(String suffix) {
        return String.join(",", ProcessCpu.THREAD_GROUPS.stream().map(g -> g + "_us" + suffix).toList());
    }

    /** One storm's per-thread-group CPU per handshake as CSV values (empty values for nginx). */
    private static String threadValues(Storm s) {
        return String.join(",", ProcessCpu.THREAD_GROUPS.stream().map(g -> s.threadMicrosPerHandshake()
                .containsKey(g) ? String.format(Locale.ROOT, "%.1f", s.threadMicrosPerHandshake().get(g)) : "")
                .toList());
    }

    /** Per thread group, the median over storms of its CPU per handshake, as CSV values. */
    private static String threadMedians(List<Storm> storms) {
        return String.join(",", ProcessCpu.THREAD_GROUPS.stream().map(g -> {
            double[] v = storms.stream().filter(s -> s.threadMicrosPerHandshake().containsKey(g))
                    .mapToDouble(s -> s.threadMicrosPerHandshake().get(g)).toArray();
            return v.length == 0 ? "" : String.format(Locale.ROOT, "%.1f", median(v));
        }).toList());
    }

    /** "loop 310.0, workers 30.0, ..." from {@link #threadMedians}'s CSV values. */
    private static String threadLabels(String csv) {
        String[] v = csv.split(",", -1);
        List<String> parts = new ArrayList<>();
        for (int i = 0; i < v.length; i++) {
            parts.add(ProcessCpu.THREAD_GROUPS.get(i) + " " + v[i]);
        }
        return String.join(", ", parts);
    }

    /** The median over rounds of this server's CPU divided by inline's in the same round. */
    private static double pairedRatio(List<Storm> mine, List<Storm> inline) {
        Map<Integer, Double> inlineByRound = new LinkedHashMap<>();
        for (Storm s : inline) {
            inlineByRound.put(s.round(), s.cpuMicrosPerHandshake());
        }
        double[] ratios = mine.stream().filter(s -> inlineByRound.containsKey(s.round()))
                .mapToDouble(s -> s.cpuMicrosPerHandshake() / inlineByRound.get(s.round())).sorted().toArray();
        return ratios.length == 0 ? Double.NaN : median(ratios);
    }

    private static double[] cpu(List<Storm> storms) {
        return storms.stream().mapToDouble(Storm::cpuMicrosPerHandshake).sorted().toArray();
    }

    static double median(double[] values) {
        return quantile(values, 0.5);
    }

    /** Linear interpolation between closest ranks; sorts a copy. */
    static double quantile(double[] values, double q) {
        double[] v = values.clone();
        Arrays.sort(v);
        if (v.length == 0) {
            return Double.NaN;
        }
        double pos = q * (v.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(lo + 1, v.length - 1);
        return v[lo] + (v[hi] - v[lo]) * (pos - lo);
    }

    private static void writeCsv(Path file, String header, List<String> rows) throws IOException {
        List<String> lines = new ArrayList<>();
        lines.add(header);
        lines.addAll(rows);
        Files.write(file, lines, StandardCharsets.UTF_8);
    }
}
