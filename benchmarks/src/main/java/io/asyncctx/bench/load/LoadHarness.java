package io.asyncctx.bench.load;

import io.asyncctx.bench.load.ServerProcesses.Running;
import io.asyncctx.bench.load.ServerProcesses.Simple;
import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.examples.ExampleServer;
import io.asyncctx.examples.LoadClient;
import io.asyncctx.examples.Machine;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The TLS load harness: a handshake storm (full TLS 1.3 handshakes, no resumption) plus established keep-alive
 * connections doing {@code GET /}, run against several servers one after the other in one invocation so that their
 * ratios come from one run: the example server in each {@code --modes} mode (by default each in its own JVM, so that
 * the server's CPU time per handshake is its own), any external HTTPS server ({@code --target}), a server command
 * ({@code --spawn-server}) and nginx with the same certificate and one worker ({@code --nginx}). Writes one CSV row
 * per server and a chart into {@code --out}.
 *
 * <p>Threading: runs on the main thread; the client and in-process servers run on their own event loops; every wait
 * is bounded.
 */
@Command(name = "LoadHarness", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Handshake storm + established connections against servers side by side; CSV and chart.")
public final class LoadHarness implements Callable<Integer> {

    @Option(names = "--modes", split = ",", description = "Example-server modes to run, in order: inline, blocking, "
            + "offload-fd, offload-callback, offload-fd-inline (offload-fd with InlinePolicy.belowMeasuredCost("
            + "--inline-below-us)), offload-fd-fair (offload-fd with --handshake-steps-per-turn); a suffix @N runs the "
            + "mode with a simulated engine latency of N ms only (default: ${DEFAULT-VALUE}; 'none' for none).")
    List<String> modes = List.of("inline", "blocking", "offload-fd", "offload-callback");

    @Option(names = "--in-process", description = "Run the example servers inside this JVM (CPU per handshake then "
            + "includes the client's).")
    boolean inProcess;

    @Option(names = "--engine", description = "One of ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
    HarnessOptions.EngineKind engine = HarnessOptions.EngineKind.software;

    @Option(names = "--latency-ms", split = ",", converter = HarnessOptions.ZeroOrMore.class,
            description = "Simulated engine latencies: each mode without an @N suffix runs once per latency, side by "
                    + "side (default: ${DEFAULT-VALUE}).")
    List<Integer> latenciesMillis = List.of(5);

    @CommandLine.Mixin
    HarnessOptions.InlineBelow inlineBelow = new HarnessOptions.InlineBelow();

    @CommandLine.Mixin
    HarnessOptions.HandshakeSteps handshakeSteps = new HarnessOptions.HandshakeSteps();

    @Option(names = "--rate", split = ",", description = "Storm rates, total handshakes/s: every server runs once per "
            + "rate, in order. 0 = no limit (saturation); N = N/s; P%% = P percent of the rate the first server "
            + "reached without a limit earlier in this invocation (so list 0 first), e.g. 0,65%% "
            + "(default: ${DEFAULT-VALUE}).", converter = HarnessOptions.RateConverter.class)
    List<HarnessOptions.Rate> rates = List.of(new HarnessOptions.RateConverter().convert("0"));

    @CommandLine.Mixin
    HarnessOptions.Workers engineWorkers = new HarnessOptions.Workers();

    @CommandLine.Mixin
    HarnessOptions.Loops loops = new HarnessOptions.Loops();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--key-type", description = "rsa (RSA-2048) | ec (ECDSA P-256) for the generated certificate "
            + "(default: ${DEFAULT-VALUE}).")
    HarnessOptions.KeyType keyType = HarnessOptions.KeyType.rsa;

    @Option(names = "--cert", description = "PEM certificate chain to use instead of a generated one (with --key).")
    Path cert;

    @Option(names = "--key", description = "PEM private key of --cert.")
    Path key;

    @Option(names = "--target", description = "An external HTTPS server host:port to measure too.")
    String target;

    @Option(names = "--target-name", description = "Label of --target or --spawn-server (default: ${DEFAULT-VALUE}).")
    String targetName = "external";

    @Option(names = "--server-pid", description = "Pid of --target's process, for its CPU time (with descendants).")
    Long serverPid;

    @Option(names = "--spawn-server", description = "A server command to start, split as a shell splits words "
            + "(quotes keep spaces), e.g. \"java -jar examples/target/netty-async-ctx-examples.jar server --port 0 "
            + "--mode offload\"; it must print 'listening on https://HOST:PORT'. Stopped with SIGTERM.")
    String spawnServer;

    @Option(names = "--nginx", description = "Path of an nginx binary: also measure nginx with the same certificate, "
            + "1 worker, TLS 1.3.")
    Path nginx;

    @Option(names = "--duration", converter = HarnessOptions.PositiveSeconds.class,
            description = "Measured seconds per server (default: ${DEFAULT-VALUE}).")
    double durationSeconds = 10;

    @Option(names = "--warmup", converter = HarnessOptions.Seconds.class,
            description = "Unmeasured seconds per server first (default: ${DEFAULT-VALUE}).")
    double warmupSeconds = 5;

    @Option(names = "--concurrency", converter = HarnessOptions.ZeroOrMore.class,
            description = "Clients handshaking at once (default: ${DEFAULT-VALUE}).")
    int concurrency = 64;

    @Option(names = "--established", converter = HarnessOptions.ZeroOrMore.class,
            description = "Established keep-alive connections (default: ${DEFAULT-VALUE}).")
    int established = 4;

    @Option(names = "--request-interval-ms", converter = HarnessOptions.OneOrMore.class,
            description = "Pace of each established connection (default: ${DEFAULT-VALUE}).")
    int requestIntervalMillis = 10;

    @Option(names = "--burst", converter = HarnessOptions.ZeroOrMore.class, description = "Open-loop bursts: this "
            + "many new connections (full TLS 1.3 handshake, one GET, close) opened at once every --burst-interval-ms; "
            + "0 for none (default: ${DEFAULT-VALUE}). Runs besides the storm of --concurrency clients: give "
            + "--concurrency 0 for bursts alone.")
    int burst;

    @Option(names = "--burst-interval-ms", converter = HarnessOptions.OneOrMore.class,
            description = "Time between two bursts (default: ${DEFAULT-VALUE}).")
    int burstIntervalMillis = 1000;

    @Option(names = "--rounds", converter = HarnessOptions.OneOrMore.class, description = "Rounds: with more than 1, "
            + "every server is started at once and kept up (side by side), each round runs them all in an order that "
            + "rotates every round, and a summary of the medians over rounds (established p50/p99/max, handshakes/s, "
            + "p99 against --baseline paired by round) is printed and written to NAME-summary.csv "
            + "(default: ${DEFAULT-VALUE}).")
    int rounds = 1;

    @Option(names = "--baseline", description = "With --rounds above 1: the label the summary's p99 ratio is taken "
            + "against, one of the servers run (default: ${DEFAULT-VALUE}).")
    String baseline = "blocking";

    @Option(names = "--client-threads", converter = HarnessOptions.OneOrMore.class,
            description = "Storm client event loops (default: ${DEFAULT-VALUE}).")
    int clientThreads = 1;

    @Option(names = "--out", description = "Directory for the CSV and the chart (default: ${DEFAULT-VALUE}).")
    Path out = Path.of("results");

    @Option(names = "--name", description = "File name stem of the CSV and PNG (default: ${DEFAULT-VALUE}).")
    String name = "load";

    /** The files of --cert and --key, read and matched by {@link #validate}; null for a generated certificate. */
    private HarnessOptions.Pem givenPem;

    /** --target split by {@link #validate}. */
    private String targetHost;
    private int targetPort;

    /** Runs the harness; exits with its code. */
    public static void main(String[] args) {
        System.exit(HarnessOptions.commandLine(new LoadHarness()).execute(args));
    }

    /** What to start, by label. */
    private record Target(String label, String mode, String engine, Starter starter) {
    }

    /** Starts one server with the certificate and key of the run. */
    @FunctionalInterface
    private interface Starter {
        Running start(HarnessOptions.Pem pem) throws Exception;
    }

    @Override
    public Integer call() throws Exception {
        List<Target> targets = validate();
        // From here on, work: the output directory, the certificate, the servers.
        System.setProperty("java.awt.headless", "true");
        Files.createDirectories(out);
        HarnessOptions.Pem pem = givenPem;
        if (pem == null) {
            Path certPem = out.resolve(name + "-cert.pem").toAbsolutePath();
            Path keyPem = out.resolve(name + "-key.pem").toAbsolutePath();
            writeSelfSigned(keyType, certPem, keyPem);
            pem = HarnessOptions.readPem(spec, certPem, keyPem);
        }
        String keyLabel = pem.key().getAlgorithm().equals("RSA") ? "RSA-2048" : "ECDSA P-256";
        String engineLabel = engine == HarnessOptions.EngineKind.simulated ? "simulated " + latenciesMillis.stream()
                .map(String::valueOf).reduce((a, b) -> a + "/" + b).orElseThrow() + " ms" : "software";
        System.out.println("machine: " + Machine.describe() + ", load average before: " + Machine.loadAverage());
        System.out.printf(Locale.ROOT, "key %s, engine %s, %d server loop(s), concurrency %d, rates %s, "
                + "%d established connections every %d ms, %.1f s measured after %.1f s warm-up, servers %s, "
                + "offload-fd-inline below %d us, offload-fd-fair %d handshake steps per loop turn%n", keyLabel,
                engineLabel, loops.threads, concurrency, rates, established, requestIntervalMillis, durationSeconds,
                warmupSeconds, inProcess ? "in this JVM" : "in their own processes", inlineBelow.micros,
                handshakeSteps.steps);
        if (burst > 0 || rounds > 1) {
            System.out.printf(Locale.ROOT, "bursts of %d new connections every %d ms; %d round(s)%s%n", burst,
                    burstIntervalMillis, rounds, rounds > 1 ? ", servers side by side, order rotating" : "");
        }
        List<ResultsWriter.Row> rows = new ArrayList<>();
        List<String> summary = new ArrayList<>();
        double firstUnlimited = Double.NaN;
        try (LoadClient client = new LoadClient(clientThreads)) {
            for (HarnessOptions.Rate rateSpec : rates) {
                double rate = rateSpec.resolve(firstUnlimited);
                if (rateSpec.percent()) {
                    System.out.printf(Locale.ROOT, "rate %s of %.0f/s = %.0f handshakes/s%n", rateSpec,
                            firstUnlimited, rate);
                }
                if (rounds == 1) {
                    for (Target t : targets) {
                        try (Running r = t.starter().start(pem)) {
                            ResultsWriter.Row row = measure(client, t, r, rate, keyLabel, 0);
                            rows.add(row);
                            if (rate == 0 && Double.isNaN(firstUnlimited)) {
                                firstUnlimited = row.result().handshakesPerSecond();
                            }
                        }
                    }
                    continue;
                }
                List<Running> running = new ArrayList<>();
                try {
                    for (Target t : targets) {
                        running.add(t.starter().start(pem));
                    }
                    List<ResultsWriter.Row> theseRows = new ArrayList<>();
                    for (int round = 0; round < rounds; round++) {
                        for (int i = 0; i < targets.size(); i++) {
                            int k = (i + round) % targets.size();
                            ResultsWriter.Row row = measure(client, targets.get(k), running.get(k), rate, keyLabel,
                                    round);
                            theseRows.add(row);
                            if (rate == 0 && Double.isNaN(firstUnlimited)) {
                                firstUnlimited = row.result().handshakesPerSecond();
                            }
                        }
                    }
                    rows.addAll(theseRows);
                    summary.addAll(RoundsSummary.summarize(theseRows, baseline));
                } finally {
                    for (Running r : running) {
                        try {
                            r.close();
                        } catch (Exception e) {
                            System.err.println("stopping a server: " + e);
                        }
                    }
                }
            }
        }
        if (!summary.isEmpty()) {
            Path sum = out.resolve(name + "-summary.csv");
            RoundsSummary.writeCsv(sum, summary);
            System.out.println("wrote " + sum);
        }
        Path csv = out.resolve(name + ".csv");
        Path png = out.resolve(name + ".png");
        ResultsWriter.writeCsv(csv, rows);
        ResultsWriter.writeChart(png, rows, keyLabel + ", engine " + engineLabel + ", " + concurrency
                + " handshaking clients, " + loops.threads + " server loop(s)");
        System.out.println("wrote " + csv + " and " + png);
        return 0;
    }

    /**
     * Checks the whole command line, what picocli could not check option by option, and returns the servers to
     * measure: nothing is written, generated, bound or spawned before every option is known to be good.
     */
    private List<Target> validate() {
        HarnessOptions.checkRates(spec, rates);
        HarnessOptions.checkOut(spec, out);
        HarnessOptions.checkName(spec, name);
        if (latenciesMillis.isEmpty()) {
            throw HarnessOptions.refuse(spec, "--latency-ms: expected one or more latencies of 0 ms or more");
        }
        if (concurrency == 0 && burst == 0 && established == 0) {
            throw HarnessOptions.refuse(spec, "--concurrency 0, --burst 0 and --established 0: nothing would "
                    + "connect; give one of them above 0");
        }
        List<String> spawnCommand = null;
        if (spawnServer != null) {
            try {
                spawnCommand = HarnessOptions.splitCommand(spawnServer);
            } catch (IllegalArgumentException e) {
                throw HarnessOptions.refuse(spec, "--spawn-server: " + e.getMessage());
            }
            if (spawnCommand.isEmpty()) {
                throw HarnessOptions.refuse(spec, "--spawn-server: empty command (give the server's command line)");
            }
            HarnessOptions.checkExecutable(spec, "--spawn-server", spawnCommand.get(0), "the first word is the "
                    + "server's program: a path, or a name on PATH");
        }
        if (nginx != null) {
            HarnessOptions.checkExecutable(spec, "--nginx", nginx.toString(), "install nginx or give its path");
        }
        if ((cert == null) != (key == null)) {
            throw HarnessOptions.refuse(spec, "--cert and --key go together: give both, or neither for a generated "
                    + "certificate (--key-type)");
        }
        if (cert != null) {
            givenPem = HarnessOptions.readPem(spec, cert, key);
        }
        if (target != null) {
            int colon = target.lastIndexOf(':');
            int port = -1;
            try {
                port = colon > 0 ? Integer.parseInt(target.substring(colon + 1)) : -1;
            } catch (NumberFormatException e) {
                // refused below
            }
            if (port < 1 || port > 65535) {
                throw HarnessOptions.refuse(spec, "--target " + target + ": expected host:port, e.g. "
                        + "127.0.0.1:8443");
            }
            targetHost = target.substring(0, colon);
            targetPort = port;
        }
        if (serverPid != null) {
            if (target == null) {
                throw HarnessOptions.refuse(spec, "--server-pid " + serverPid + ": goes with --target (a spawned "
                        + "server's CPU is counted without it)");
            }
            if (ProcessHandle.of(serverPid).isEmpty()) {
                throw HarnessOptions.refuse(spec, "--server-pid " + serverPid + ": no such process (give the pid of "
                        + "--target's server)");
            }
        }

        boolean simulated = engine == HarnessOptions.EngineKind.simulated;
        List<Target> targets = new ArrayList<>();
        for (String modeSpec : modes) {
            if (modeSpec.equals("none")) {
                continue;
            }
            int at = modeSpec.indexOf('@');
            String m = at < 0 ? modeSpec : modeSpec.substring(0, at);
            if (!LoadServer.MODES.contains(m)) {
                throw HarnessOptions.refuse(spec, "--modes " + modeSpec + ": expected one of " + LoadServer.MODES
                        + ", optionally with @LATENCY_MS, or none");
            }
            List<Integer> lats;
            try {
                lats = at < 0 ? latenciesMillis : List.of(new HarnessOptions.ZeroOrMore()
                        .convert(modeSpec.substring(at + 1)));
            } catch (CommandLine.TypeConversionException e) {
                throw HarnessOptions.refuse(spec, "--modes " + modeSpec + ": expected MODE@LATENCY_MS with a latency "
                        + "of 0 ms or more, e.g. blocking@5");
            }
            if (!simulated) {
                lats = List.of(latenciesMillis.get(0));
            }
            boolean suffix = simulated && (at >= 0 || latenciesMillis.size() > 1);
            for (int lat : lats) {
                String label = suffix ? m + "@" + lat + "ms" : m;
                String rowEngine = simulated ? "simulated " + lat + " ms" : "software";
                targets.add(new Target(label, m, rowEngine, inProcess ? pem -> inProcess(m, lat, pem)
                        : pem -> spawnMode(m, lat, pem)));
            }
        }
        if (spawnCommand != null) {
            List<String> command = spawnCommand;
            targets.add(new Target(targetName, "spawned", "-", pem -> ServerProcesses.spawn(command, true)));
        }
        if (target != null) {
            targets.add(new Target(targetName, "external", "-", pem -> external()));
        }
        if (nginx != null) {
            targets.add(new Target("nginx", "nginx", "-",
                    pem -> ServerProcesses.startNginx(nginx, out.resolve("nginx"), pem.certFile(), pem.keyFile())));
        }
        if (targets.isEmpty()) {
            throw HarnessOptions.refuse(spec, "nothing to measure: give --modes, --target, --spawn-server or --nginx");
        }
        if (rounds > 1 && targets.stream().noneMatch(t -> RoundsSummary.matches(t.label(), baseline))) {
            throw HarnessOptions.refuse(spec, "--baseline " + baseline + ": no server of that label runs; give "
                    + "--baseline one of " + targets.stream().map(Target::label).toList());
        }
        return targets;
    }

    /** One measured window against one running server. */
    private ResultsWriter.Row measure(LoadClient client, Target t, Running r, double rate, String keyLabel, int round)
            throws InterruptedException {
        LoadClient.Settings s = new LoadClient.Settings(r.host(), r.port(), concurrency, established,
                Duration.ofMillis(requestIntervalMillis), Duration.ofSeconds(10), rate, burst,
                Duration.ofMillis(burstIntervalMillis));
        LoadClient.Result res = client.run(s, seconds(warmupSeconds), seconds(durationSeconds), r.cpu());
        String label = rate > 0 ? t.label() + " " + Math.round(rate) + "/s" : t.label();
        ResultsWriter.Row row = new ResultsWriter.Row(label, t.mode(), t.engine(), keyLabel, concurrency,
                established, loops.threads, res, res.probeCpuSeconds()[0], r.cpuScope(), Machine.loadAverage(), rate,
                round);
        System.out.println((rounds > 1 ? "round " + round + " " : "") + row.describe());
        System.out.flush();
        return row;
    }

    private static Duration seconds(double s) {
        return Duration.ofMillis(Math.round(s * 1000));
    }

    static void writeSelfSigned(HarnessOptions.KeyType keyType, Path certPem, Path keyPem) throws Exception {
        X509Bundle b = new CertificateBuilder().subject("CN=localhost").addSanDnsName("localhost")
                .addSanIpAddress("127.0.0.1").setIsCertificateAuthority(true).algorithm(keyType.algorithm)
                .buildSelfSigned();
        Files.writeString(certPem, b.getCertificatePEM(), StandardCharsets.US_ASCII);
        Files.writeString(keyPem, b.getPrivateKeyPEM(), StandardCharsets.US_ASCII);
    }

    private Running inProcess(String mode, int latencyMillis, HarnessOptions.Pem pem) throws Exception {
        AsyncEngine e = LoadServer.newEngine(engine, latencyMillis, engineWorkers.workers,
                new KeyPair(pem.chain()[0].getPublicKey(), pem.key()));
        ExampleServer server;
        try {
            server = LoadServer.start(mode, loops.threads, 0, e, pem.chain(), pem.key(), inlineBelow.micros,
                    handshakeSteps.steps);
        } catch (Exception | Error ex) {
            e.close();
            throw ex;
        }
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        return new Simple("127.0.0.1", server.port(), os::getProcessCpuTime, "whole JVM incl. client", () -> {
            server.close();
            e.close();
        });
    }

    private Running spawnMode(String mode, int latencyMillis, HarnessOptions.Pem pem) throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>(List.of(java, ProcessCpu.FIXED_COMPILER_THREADS, "-cp",
                System.getProperty("java.class.path"), LoadServer.class.getName()));
        cmd.addAll(loadServerArguments(mode, latencyMillis, pem));
        return ServerProcesses.spawn(cmd, false);
    }

    /** {@link LoadServer}'s command line for one mode, after its class name: the harness's own settings. */
    List<String> loadServerArguments(String mode, int latencyMillis, HarnessOptions.Pem pem) {
        return List.of("--mode", mode, "--engine", engine.name(), "--latency-ms", Integer.toString(latencyMillis),
                "--workers", Integer.toString(engineWorkers.workers), "--threads", Integer.toString(loops.threads),
                "--inline-below-us", Long.toString(inlineBelow.micros), "--handshake-steps-per-turn",
                Integer.toString(handshakeSteps.steps), "--cert", pem.certFile().toString(), "--key",
                pem.keyFile().toString());
    }

    private Running external() {
        if (serverPid == null) {
            return new Simple(targetHost, targetPort, () -> 0, "unknown (no --server-pid)", () -> { });
        }
        long pid = serverPid;
        return new Simple(targetHost, targetPort, () -> ProcessCpu.treeCpuNanos(pid), "server process tree",
                () -> { });
    }
}
