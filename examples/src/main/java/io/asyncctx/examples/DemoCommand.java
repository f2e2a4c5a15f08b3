package io.asyncctx.examples;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.testkit.SimulatedAcceleratorEngine;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.OffloadConfig;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code demo}: the main job in about a minute. Starts the example server in-process on loopback in each mode (inline,
 * blocking, offload via wait fd, offload via callback) with each engine (software; a simulated accelerator with a
 * fixed latency), runs a {@link LoadClient} storm against it, and prints a table and one sentence saying what offload
 * bought on this machine.
 *
 * <p>Threading: {@link #call()} runs on the main thread; the servers and the client run on their own event loops,
 * and every wait is bounded.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "Handshake storm plus established keep-alive connections against the example server in each "
                + "mode; prints handshakes/s, handshake latency and established connections' p99 round trip.")
final class DemoCommand implements Callable<Integer> {

    @Option(names = "--duration", description = "Measured time per scenario, e.g. 5s or 800ms (default: "
            + "${DEFAULT-VALUE}).")
    String duration = "5s";

    // 3 s, not 1 s: with 1 s the JIT was still compiling during the first scenarios (inline measured 488 instead of
    // 1459 handshakes/s on a quiet machine; results/demo-quiet-warmup1s.txt vs demo-warmup3s.txt).
    @Option(names = "--warmup", description = "Unmeasured time per scenario before it (default: ${DEFAULT-VALUE}).")
    String warmup = "3s";

    @Option(names = "--concurrency", description = "Clients handshaking at once in the storm (default: "
            + "${DEFAULT-VALUE}).")
    int concurrency = 64;

    @Option(names = "--rate", description = "Total handshakes/s of the storm in every scenario (0 = as fast as the "
            + "clients go; a rate compares established round trips at equal load) (default: ${DEFAULT-VALUE}).")
    double rate;

    @Option(names = "--established", description = "Established keep-alive connections doing GET / during the storm "
            + "(default: ${DEFAULT-VALUE}).")
    int established = 4;

    @Option(names = "--request-interval", description = "Pace of each established connection's requests (default: "
            + "${DEFAULT-VALUE}).")
    String requestInterval = "10ms";

    @Option(names = "--key-type", description = "rsa (RSA-2048) | ec (ECDSA P-256) (default: rsa).",
            converter = Choices.DemoKeyTypeChoice.class, completionCandidates = Choices.DemoKeyTypeChoice.class)
    Choices.KeyType keyType = Choices.KeyType.RSA;

    @Option(names = "--engine", description = "software | simulated | both (default: both).",
            converter = Choices.DemoEnginesChoice.class, completionCandidates = Choices.DemoEnginesChoice.class)
    Choices.DemoEngines engine = Choices.DemoEngines.BOTH;

    @Option(names = "--latency-ms", description = "Service latency of the simulated accelerator (default: "
            + "${DEFAULT-VALUE}).")
    int latencyMillis = 5;

    @Option(names = "--threads", description = "Server event loops (default: ${DEFAULT-VALUE}).")
    int threads = 1;

    @Option(names = "--client-threads", description = "Client event loops of the storm (default: ${DEFAULT-VALUE}).")
    int clientThreads = 1;

    @Option(names = "--workers", description = "Worker threads of the software engine (default: cores).")
    int workers = Runtime.getRuntime().availableProcessors();

    /** One row of the table. */
    private record Scenario(String mode, ExampleServer.Mode serverMode, OffloadConfig.Notify notifyMode,
                            String engine) {
    }

    /** A measured row. */
    private record Row(Scenario scenario, LoadClient.Result result, double serverLoopCpu) {
    }

    @Override
    public Integer call() throws Exception {
        Duration dur = parseDuration(duration, "--duration");
        Duration warm = parseDuration(warmup, "--warmup");
        Duration interval = parseDuration(requestInterval, "--request-interval");
        if (concurrency < 1 || established < 0 || threads < 1 || clientThreads < 1 || workers < 1
                || latencyMillis < 0 || !(rate >= 0) || Double.isInfinite(rate)) {
            throw new BadFlagException("--concurrency, --threads, --client-threads and --workers must be at least 1, "
                    + "--established, --latency-ms and --rate at least 0");
        }
        boolean software = engine != Choices.DemoEngines.SIMULATED;
        boolean simulated = engine != Choices.DemoEngines.SOFTWARE;
        KeyMaterial keys = KeyMaterial.selfSigned(keyType);
        String simName = "simulated " + latencyMillis + " ms";
        List<Scenario> scenarios = new ArrayList<>();
        if (software) {
            scenarios.add(new Scenario("inline", ExampleServer.Mode.INLINE, OffloadConfig.Notify.FD, "software"));
            scenarios.add(new Scenario("blocking", ExampleServer.Mode.BLOCKING, OffloadConfig.Notify.FD, "software"));
            scenarios.add(new Scenario("offload-fd", ExampleServer.Mode.OFFLOAD, OffloadConfig.Notify.FD, "software"));
            scenarios.add(new Scenario("offload-callback", ExampleServer.Mode.OFFLOAD, OffloadConfig.Notify.CALLBACK,
                    "software"));
        }
        if (simulated) {
            scenarios.add(new Scenario("blocking", ExampleServer.Mode.BLOCKING, OffloadConfig.Notify.FD, simName));
            scenarios.add(new Scenario("offload-fd", ExampleServer.Mode.OFFLOAD, OffloadConfig.Notify.FD, simName));
            scenarios.add(new Scenario("offload-callback", ExampleServer.Mode.OFFLOAD, OffloadConfig.Notify.CALLBACK,
                    simName));
        }

        double loadBefore = Machine.loadAverage();
        System.out.println("netty-async-ctx demo: " + Machine.describe() + ", load average " + loadBefore);
        if (loadBefore > Runtime.getRuntime().availableProcessors()) {
            System.out.println("note: the machine is busy (load average above the core count): the figures below "
                    + "will not be comparable with a quiet run");
        }
        System.out.printf(Locale.ROOT, "key %s, %d server loop(s), %d client storm loop(s) + 1 for the established "
                        + "connections, %d clients handshaking at once (full TLS 1.3 handshakes, no resumption), "
                        + "%s, %d established connections doing GET / every %d ms; %s measured per scenario after %s "
                        + "warm-up%n", keyType.label, threads, clientThreads,
                concurrency, rate > 0 ? String.format(Locale.ROOT, "at most %.0f handshakes/s", rate) : "no rate limit",
                established, interval.toMillis(), fmt(dur), fmt(warm));
        System.out.flush();

        List<Row> rows = new ArrayList<>();
        try (SoftwareEngine sw = SoftwareEngine.builder().keyPair(keys.keyPair()).workers(workers)
                .provider(CryptoProviders.Choice.AUTO).build();
             SimulatedAcceleratorEngine sim = SimulatedAcceleratorEngine.builder().name("simulated")
                     .latency(Duration.ofMillis(latencyMillis)).ringSize(Math.max(1024, 4 * concurrency))
                     .signer(JcaKeySigner.withJdkFallback(keys.privateKey(), keys.publicKey(),
                             CryptoProviders.select(CryptoProviders.Choice.AUTO)))
                     .build();
             LoadClient client = new LoadClient(clientThreads)) {
            // JIT warm-up of both sides before the first measured scenario, not reported.
            runOne(client, new Scenario("inline", ExampleServer.Mode.INLINE, OffloadConfig.Notify.FD, "software"),
                    sw, keys, Duration.ZERO, Duration.ofMillis(1500), interval);
            int i = 0;
            for (Scenario sc : scenarios) {
                AsyncEngine e = sc.engine().equals("software") ? sw : sim;
                Row row = runOne(client, sc, e, keys, warm, dur, interval);
                rows.add(row);
                LoadClient.Result r = row.result();
                System.out.printf(Locale.ROOT, "[%d/%d] %-16s %-16s %7.0f handshakes/s, handshake p50 %s p99 %s, "
                                + "established p99 %s%s%n", ++i, scenarios.size(), sc.mode(), sc.engine(),
                        r.handshakesPerSecond(), ms(r.handshakeMicros().getValueAtPercentile(50)),
                        ms(r.handshakeMicros().getValueAtPercentile(99)),
                        ms(r.roundTripMicros().getValueAtPercentile(99)),
                        r.handshakeFailures() + r.requestFailures() > 0
                                ? " (" + r.handshakeFailures() + " handshake and " + r.requestFailures()
                                + " request failures)" : "");
                System.out.flush();
            }
        }
        System.out.println();
        printTable(rows, software, simName);
        System.out.println();
        System.out.println(summaryOf(comparison(rows, "blocking", simName), comparison(rows, "inline", "software"),
                simName, loadBefore, Machine.loadAverage(), Runtime.getRuntime().availableProcessors()));
        return 0;
    }

    private Row runOne(LoadClient client, Scenario sc, AsyncEngine engine, KeyMaterial keys, Duration warm,
                       Duration dur, Duration interval) throws Exception {
        ExampleServer server = ExampleServer.builder(sc.serverMode()).transport(ExampleServer.Transport.EPOLL, threads)
                .notify(sc.notifyMode()).engine(engine, keys.chain()).key(keys.privateKey()).start();
        try {
            LoadClient.Settings s = new LoadClient.Settings("127.0.0.1", server.port(), concurrency, established,
                    interval, Duration.ofSeconds(10), rate);
            LoadClient.Result r = client.run(s, warm, dur, DemoCommand::serverLoopCpuNanos);
            return new Row(sc, r, r.probeCpuSeconds()[0] / r.seconds());
        } finally {
            server.close();
        }
    }

    /** CPU time of the server's event-loop threads (Netty's default names; the client's loops are named apart). */
    private static long serverLoopCpuNanos() {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        long sum = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().startsWith("multiThreadIoEventLoopGroup")) {
                long c = mx.getThreadCpuTime(t.getId());
                if (c > 0) {
                    sum += c;
                }
            }
        }
        return sum;
    }

    private void printTable(List<Row> rows, boolean software, String simName) {
        String head = String.format(Locale.ROOT, "%-18s %-17s %12s %12s %12s %15s %12s %12s", "mode", "engine",
                "handshakes/s", "hs p50", "hs p99", "estab. p99 RTT", "server loop", "client loop");
        System.out.println(head);
        System.out.println("-".repeat(head.length()));
        for (Row row : rows) {
            LoadClient.Result r = row.result();
            System.out.printf(Locale.ROOT, "%-18s %-17s %12.0f %12s %12s %15s %11.0f%% %11.0f%%%n",
                    label(row.scenario().mode()), row.scenario().engine(), r.handshakesPerSecond(),
                    ms(r.handshakeMicros().getValueAtPercentile(50)), ms(r.handshakeMicros().getValueAtPercentile(99)),
                    ms(r.roundTripMicros().getValueAtPercentile(99)), 100 * row.serverLoopCpu(),
                    100 * r.clientCpuShare() / clientThreads);
        }
        if (rows.stream().anyMatch(r -> r.scenario().engine().equals(simName))) {
            System.out.printf(Locale.ROOT, "%-18s %-17s %12s %12s %12s %15s%n", label("inline"), simName, "n/a",
                    "n/a", "n/a", "n/a");
            System.out.println("(inline has no accelerator variant: stock Netty signs with the key inside BoringSSL.)");
        }
        System.out.println("hs = full TLS 1.3 handshake, connect to done, as the client saw it; estab. p99 RTT = p99 "
                + "round trip of GET / on the established connections during the storm (corrected for coordinated "
                + "omission); server loop / client loop = CPU share of one core used by the server's and the storm "
                + "client's event-loop threads (near 100% = that side bounds the rate).");
    }

    private static String label(String mode) {
        return switch (mode) {
            case "offload-fd" -> "offload (wait fd)";
            case "offload-callback" -> "offload (callback)";
            default -> mode;
        };
    }

    /** One comparison of the closing sentence: both offload paths against a baseline. */
    record Comparison(double fdHs, double callbackHs, double baseHs, double fdP99, double callbackP99,
                      double baseP99) {
        boolean complete() {
            return !Double.isNaN(fdHs) && !Double.isNaN(callbackHs) && !Double.isNaN(baseHs);
        }
    }

    /**
     * The sentence at the end, computed from the rows: each offload comparison names both notification paths (the
     * wait fd and the callback). When the 1-minute load average was above the number of cores before or after the
     * scenarios, it says that other processes competed for the cores and that the figures are not comparable.
     */
    static String summaryOf(Comparison sim, Comparison sw, String simName, double loadBefore, double loadAfter,
                            int cores) {
        StringBuilder sb = new StringBuilder();
        if (sim.complete()) {
            sb.append(String.format(Locale.ROOT, "With a %s accelerator, offload completed %s (wait fd) and %s "
                            + "(callback) the handshakes/s of the blocking server (%.0f and %.0f vs %.0f), with "
                            + "established connections' p99 round trip at %s and %s (blocking: %s)",
                    simName.replace("simulated ", ""), ratio(sim.fdHs(), sim.baseHs()),
                    ratio(sim.callbackHs(), sim.baseHs()), sim.fdHs(), sim.callbackHs(), sim.baseHs(),
                    ms(sim.fdP99()), ms(sim.callbackP99()), ms(sim.baseP99())));
        }
        if (sw.complete()) {
            sb.append(sb.length() == 0 ? "With" : "; with");
            sb.append(String.format(Locale.ROOT, " the software engine, offload ran at %s (wait fd) and %s "
                            + "(callback) stock Netty's (inline) handshakes/s (%.0f and %.0f vs %.0f), with "
                            + "established connections' p99 at %s and %s (inline: %s)", ratio(sw.fdHs(), sw.baseHs()),
                    ratio(sw.callbackHs(), sw.baseHs()), sw.fdHs(), sw.callbackHs(), sw.baseHs(), ms(sw.fdP99()),
                    ms(sw.callbackP99()), ms(sw.baseP99())));
        }
        String sentence = sb.length() == 0 ? "Nothing to compare: run both offload paths and a baseline."
                : sb.append('.').toString();
        if (worseP99AtHigherRate(sim) || worseP99AtHigherRate(sw)) {
            sentence += " Where an offload row's established p99 is above its baseline's, it also ran more handshakes "
                    + "per second: the storm keeps a fixed number of clients handshaking, so a server that finishes "
                    + "handshakes faster gets more of them, and the established requests on the same event loop wait "
                    + "behind more handshake steps. Compared at one handshake rate (LoadHarness --rate) offload's p99 "
                    + "is the lower one (RESULTS.md, target 4); --handshake-steps-per-turn bounds the steps per loop "
                    + "turn.";
        }
        double load = Math.max(Double.isNaN(loadBefore) ? 0 : loadBefore, Double.isNaN(loadAfter) ? 0 : loadAfter);
        if (load > cores) {
            sentence += String.format(Locale.ROOT, " The machine was busy (load average %.2f on %d cores): other "
                    + "processes competed for the cores, so these figures are not comparable with a quiet run; "
                    + "run the demo again when the load average is below %d.", load, cores, cores);
        }
        return sentence;
    }

    /** An offload path with a worse established p99 than its baseline while it ran more handshakes per second. */
    static boolean worseP99AtHigherRate(Comparison c) {
        return c.complete() && ((c.fdP99() > c.baseP99() && c.fdHs() > c.baseHs())
                || (c.callbackP99() > c.baseP99() && c.callbackHs() > c.baseHs()));
    }

    private static Comparison comparison(List<Row> rows, String baseline, String engine) {
        return new Comparison(hs(rows, "offload-fd", engine), hs(rows, "offload-callback", engine),
                hs(rows, baseline, engine), p99(rows, "offload-fd", engine), p99(rows, "offload-callback", engine),
                p99(rows, baseline, engine));
    }

    private static Row find(List<Row> rows, String mode, String engine) {
        return rows.stream().filter(r -> r.scenario().mode().equals(mode) && r.scenario().engine().equals(engine))
                .findFirst().orElse(null);
    }

    private static double hs(List<Row> rows, String mode, String engine) {
        Row r = find(rows, mode, engine);
        return r == null ? Double.NaN : r.result().handshakesPerSecond();
    }

    private static double p99(List<Row> rows, String mode, String engine) {
        Row r = find(rows, mode, engine);
        return r == null ? Double.NaN : r.result().roundTripMicros().getValueAtPercentile(99);
    }

    private static String ratio(double a, double b) {
        if (b <= 0) {
            return "infinitely many times";
        }
        double x = a / b;
        return x >= 10 ? String.format(Locale.ROOT, "%.0fx", x) : String.format(Locale.ROOT, "%.2fx", x);
    }

    /** Microseconds as milliseconds for people. */
    static String ms(double micros) {
        if (Double.isNaN(micros)) {
            return "n/a";
        }
        double m = micros / 1000;
        return m >= 100 ? String.format(Locale.ROOT, "%.0f ms", m)
                : m >= 10 ? String.format(Locale.ROOT, "%.1f ms", m) : String.format(Locale.ROOT, "%.2f ms", m);
    }

    private static String fmt(Duration d) {
        return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() + " ms";
    }

    /** Parses {@code 5s}, {@code 800ms}, {@code 2m} or a bare number of seconds. */
    static Duration parseDuration(String text, String flag) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        try {
            if (t.endsWith("ms")) {
                return positive(Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2))), text, flag);
            }
            if (t.endsWith("s")) {
                return positive(Duration.ofMillis(Math.round(Double.parseDouble(t.substring(0, t.length() - 1))
                        * 1000)), text, flag);
            }
            if (t.endsWith("m")) {
                return positive(Duration.ofSeconds(Long.parseLong(t.substring(0, t.length() - 1)) * 60), text, flag);
            }
            return positive(Duration.ofMillis(Math.round(Double.parseDouble(t) * 1000)), text, flag);
        } catch (NumberFormatException e) {
            throw new BadFlagException(flag + " " + text + ": expected a duration such as 5s, 800ms or 2m");
        }
    }

    private static Duration positive(Duration d, String text, String flag) {
        if (d.isNegative() || (d.isZero() && !flag.equals("--warmup"))) {
            throw new BadFlagException(flag + " " + text + ": expected a positive duration");
        }
        return d;
    }
}
