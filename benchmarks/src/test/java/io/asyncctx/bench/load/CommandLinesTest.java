package io.asyncctx.bench.load;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import picocli.CommandLine;

/**
 * Every option of every load tool is checked before the tool does any work: a bad value makes {@code execute} return
 * 2 with one line on stderr that names the option, and nothing was done: no server printed "listening on" (the
 * servers), no output directory, certificate or server appeared (the harnesses). And the command lines the harnesses
 * spawn their servers with are ones the servers accept.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class CommandLinesTest {

    @TempDir
    static Path dir;

    private static Path cert;
    private static Path key;
    private static Path otherKey;

    @BeforeAll
    static void writeKeys() throws Exception {
        cert = dir.resolve("cert.pem");
        key = dir.resolve("key.pem");
        otherKey = dir.resolve("other-key.pem");
        LoadHarness.writeSelfSigned(HarnessOptions.KeyType.ec, cert, key);
        LoadHarness.writeSelfSigned(HarnessOptions.KeyType.ec, dir.resolve("other-cert.pem"), otherKey);
    }

    static Stream<Arguments> badServerOptions() {
        return Stream.of(
                server(LoadServer::new, "--mode", "--mode", "warp"),
                server(LoadServer::new, "--engine", "--engine", "quantum"),
                server(LoadServer::new, "--latency-ms", "--latency-ms", "-1"),
                server(LoadServer::new, "--workers", "--workers", "0"),
                server(LoadServer::new, "--threads", "--threads", "0"),
                server(LoadServer::new, "--inline-below-us", "--inline-below-us", "-1"),
                server(LoadServer::new, "--handshake-steps-per-turn", "--handshake-steps-per-turn", "0"),
                server(LoadServer::new, "--port", "--port", "65536"),
                server(LoadServer::new, "--cert", "--cert", "/nonexistent/cert.pem"),
                server(LoadServer::new, "--key", "--key", "OTHER_KEY"),
                server(ReactorLoadServer::new, "--mode", "--mode", "stock"),
                server(ReactorLoadServer::new, "--workers", "--workers", "-2"),
                server(ReactorLoadServer::new, "--threads", "--threads", "0"),
                server(ReactorLoadServer::new, "--inline-below-us", "--inline-below-us", "soon"),
                server(ReactorLoadServer::new, "--key", "--key", "CERT"));
    }

    /** A server command line with one bad option; the others (mode, files) good. */
    private static Arguments server(Supplier<Callable<Integer>> command, String option, String... bad) {
        return Arguments.of(command, option, List.of(bad));
    }

    @ParameterizedTest(name = "{1} {2}")
    @MethodSource("badServerOptions")
    void shouldRefuseABadServerOptionBeforeReadingKeysOrBinding(Supplier<Callable<Integer>> command, String option,
                                                                List<String> bad) {
        Callable<Integer> server = command.get();
        List<String> args = withBase(bad, "--mode", server instanceof LoadServer ? "offload-fd-fair"
                : "reactor-offload-inline", "--cert", cert.toString(), "--key", key.toString());
        InputStream in = System.in;
        PrintStream out = System.out;
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        String err;
        try {
            // A server that wrongly accepted its options would bind, print "listening on" and, its input being empty,
            // stop at once.
            System.setIn(new ByteArrayInputStream(new byte[0]));
            System.setOut(new PrintStream(stdout, true, StandardCharsets.UTF_8));
            err = refused(server, args);
        } finally {
            System.setIn(in);
            System.setOut(out);
        }
        assertTrue(err.contains(option), () -> "names " + option + ": " + err);
        assertEquals("", stdout.toString(StandardCharsets.UTF_8), "nothing started");
    }

    static Stream<Arguments> badHarnessOptions() {
        return Stream.of(
                harness(LoadHarness::new, "--duration", "--duration", "0"),
                harness(LoadHarness::new, "--warmup", "--warmup", "-1"),
                harness(LoadHarness::new, "--concurrency", "--concurrency", "-1"),
                harness(LoadHarness::new, "--established", "--established", "-4"),
                harness(LoadHarness::new, "--request-interval-ms", "--request-interval-ms", "0"),
                harness(LoadHarness::new, "--burst", "--burst", "-1"),
                harness(LoadHarness::new, "--burst-interval-ms", "--burst-interval-ms", "0"),
                harness(LoadHarness::new, "--rounds", "--rounds", "0"),
                harness(LoadHarness::new, "--client-threads", "--client-threads", "0"),
                harness(LoadHarness::new, "--threads", "--threads", "0"),
                harness(LoadHarness::new, "--workers", "--workers", "0"),
                harness(LoadHarness::new, "--inline-below-us", "--inline-below-us", "-1"),
                harness(LoadHarness::new, "--handshake-steps-per-turn", "--handshake-steps-per-turn", "0"),
                harness(LoadHarness::new, "--latency-ms", "--engine", "simulated", "--latency-ms", "5,-1"),
                harness(LoadHarness::new, "--modes", "--modes", "offload-fd@soon"),
                harness(LoadHarness::new, "--key-type", "--key-type", "dsa"),
                harness(LoadHarness::new, "--target", "--target", "localhost"),
                harness(LoadHarness::new, "--server-pid", "--target", "127.0.0.1:1", "--server-pid",
                        Long.toString(Long.MAX_VALUE)),
                harness(LoadHarness::new, "--spawn-server", "--spawn-server", "no-such-server-program --port 0"),
                harness(LoadHarness::new, "--spawn-server", "--spawn-server", "java 'unterminated"),
                harness(LoadHarness::new, "--cert", "--cert", "CERT"),
                harness(LoadHarness::new, "--key", "--cert", "CERT", "--key", "OTHER_KEY"),
                harness(LoadHarness::new, "--name", "--name", "sub/load"),
                harness(LoadHarness::new, "--baseline", "--modes", "offload-fd,offload-fd-fair", "--rounds", "2"),
                harness(LoadHarness::new, "--concurrency 0", "--concurrency", "0", "--established", "0"),
                harness(H2loadCpuHarness::new, "--rounds", "--rounds", "0"),
                harness(H2loadCpuHarness::new, "--warmup-rounds", "--warmup-rounds", "-1"),
                harness(H2loadCpuHarness::new, "--connections", "--connections", "0"),
                harness(H2loadCpuHarness::new, "--requests", "--connections", "20", "--requests", "10"),
                harness(H2loadCpuHarness::new, "--workers", "--workers", "0"),
                harness(H2loadCpuHarness::new, "--inline-below-us", "--inline-below-us", "-1"),
                harness(H2loadCpuHarness::new, "--h2load", "--h2load", "/nonexistent/h2load"),
                harness(H2loadCpuHarness::new, "--server-classpath", "--server-classpath", "old=/nonexistent.jar"),
                harness(H2loadCpuHarness::new, "--server-classpath", "--server-classpath", "a,b=CERT"),
                harness(H2loadCpuHarness::new, "--out", "--out", "CERT"),
                harness(H2loadCpuHarness::new, "--name", "--name", ".."));
    }

    /** A harness command line with one bad option (and what it needs beside it). */
    private static Arguments harness(Supplier<Callable<Integer>> command, String option, String... bad) {
        return Arguments.of(command, option, List.of(bad));
    }

    @ParameterizedTest(name = "{1} {2}")
    @MethodSource("badHarnessOptions")
    void shouldRefuseABadHarnessOptionBeforeWritingGeneratingOrSpawning(Supplier<Callable<Integer>> command,
                                                                       String option, List<String> bad)
            throws Exception {
        Path out = Files.createTempDirectory(dir, "run").resolve("out");
        Callable<Integer> harness = command.get();
        List<String> args = harness instanceof H2loadCpuHarness
                ? withBase(bad, "--out", out.toString(), "--nginx", "none", "--key-types", "ec")
                : withBase(bad, "--out", out.toString(), "--modes", "offload-fd", "--key-type", "ec");
        String err = refused(harness, args);
        assertTrue(err.contains(option), () -> "names " + option + ": " + err);
        assertFalse(Files.exists(out), "nothing written, no certificate generated, no server started: " + out);
    }

    @Test
    void shouldRefuseABadBenchmarkArgumentOrProbeOptionBeforeAnyHandshake() {
        assertTrue(refused(new QuicHandshakeBench(), List.of("dsa")).contains("[rsa, ec]"));
        assertTrue(refused(new QuicHandshakeBench(), List.of("ec", "0")).contains("<rounds>"));
        assertTrue(refused(new QuicHandshakeBench(), List.of("ec", "3", "five")).contains("<seconds>"));
        assertTrue(refused(new PausedHandshakesProbe(), List.of("--connections", "0")).contains("--connections"));
        assertTrue(refused(new PausedHandshakesProbe(), List.of("--latency-s", "0")).contains("--latency-s"));
        assertTrue(refused(new PausedHandshakesProbe(), List.of("--fd-mode", "SHARED")).contains("PER_CTX"));
        assertTrue(refused(new PausedHandshakesProbe(), List.of("--client-of", "70000")).contains("--client-of"));
    }

    @Test
    void shouldSpawnEachServerWithACommandLineItAccepts() {
        HarnessOptions.Pem pem = new HarnessOptions.Pem(cert, key, null, null);
        LoadHarness harness = new LoadHarness();
        new CommandLine(harness).parseArgs("--engine", "simulated", "--workers", "3", "--threads", "2",
                "--inline-below-us", "40", "--handshake-steps-per-turn", "4");
        LoadServer server = new LoadServer();
        new CommandLine(server).parseArgs(harness.loadServerArguments("offload-fd-fair", 7, pem)
                .toArray(new String[0]));
        assertEquals("offload-fd-fair", server.mode);
        assertEquals(HarnessOptions.EngineKind.simulated, server.engine);
        assertEquals(7, server.latencyMillis);
        assertEquals(3, server.workers.workers);
        assertEquals(2, server.loops.threads);
        assertEquals(40, server.inlineBelow.micros);
        assertEquals(4, server.handshakeSteps.steps);
        assertEquals(cert, server.cert);
        assertEquals(key, server.key);

        H2loadCpuHarness h2 = new H2loadCpuHarness();
        new CommandLine(h2).parseArgs("--inline-below-us", "25");
        LoadServer example = new LoadServer();
        new CommandLine(example).parseArgs(h2.serverArguments("offload-fd-inline", 2, cert, key)
                .toArray(new String[0]));
        assertEquals(HarnessOptions.EngineKind.software, example.engine);
        assertEquals(2, example.workers.workers);
        assertEquals(1, example.loops.threads);
        assertEquals(25, example.inlineBelow.micros);
        ReactorLoadServer reactor = new ReactorLoadServer();
        new CommandLine(reactor).parseArgs(h2.serverArguments("reactor-offload-inline", 2, cert, key)
                .toArray(new String[0]));
        assertEquals("reactor-offload-inline", reactor.mode);
        assertEquals(2, reactor.workers.workers);
        assertEquals(25, reactor.inlineBelow.micros);
        assertEquals(key, reactor.key);
    }

    @Test
    void shouldGiveTheServersTheHarnessesDefaults() {
        LoadServer server = new LoadServer();
        new CommandLine(server).parseArgs("--mode", "inline", "--cert", "c", "--key", "k");
        ReactorLoadServer reactor = new ReactorLoadServer();
        new CommandLine(reactor).parseArgs("--mode", "reactor-stock", "--cert", "c", "--key", "k");
        LoadHarness harness = new LoadHarness();
        new CommandLine(harness).parseArgs();
        int cores = Runtime.getRuntime().availableProcessors();
        assertEquals(List.of(cores, cores, cores), List.of(server.workers.workers, reactor.workers.workers,
                harness.engineWorkers.workers), "one --workers default: the cores");
        assertEquals(List.of(1, 1, 1), List.of(server.loops.threads, reactor.loops.threads, harness.loops.threads));
        assertEquals(List.of(30L, 30L, 30L), List.of(server.inlineBelow.micros, reactor.inlineBelow.micros,
                harness.inlineBelow.micros));
    }

    /**
     * The bad options after the base options they do not give themselves (picocli refuses an option given twice, which
     * would hide what is tested); CERT and OTHER_KEY stand for the files.
     */
    private static List<String> withBase(List<String> bad, String... base) {
        List<String> args = new ArrayList<>();
        for (int i = 0; i < base.length; i += 2) {
            if (!bad.contains(base[i])) {
                args.addAll(List.of(base[i], base[i + 1]));
            }
        }
        for (String b : bad) {
            args.add(b.equals("OTHER_KEY") ? otherKey.toString() : b.equals("CERT") ? cert.toString() : b);
        }
        return args;
    }

    /**
     * Runs a command line that must be refused, through the tools' own {@link HarnessOptions#commandLine}: exit code
     * 2 and one line on stderr.
     *
     * @return that line
     */
    static String refused(Object command, List<String> args) {
        StringWriter err = new StringWriter();
        CommandLine cl = HarnessOptions.commandLine(command);
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(args.toArray(new String[0]));
        String text = err.toString();
        assertEquals(2, code, () -> "exit code of " + String.join(" ", args) + "\n" + text);
        assertEquals(1, text.strip().lines().count(), () -> "one line: " + text);
        return text.strip();
    }
}
