package io.asyncctx.bench.load;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.testkit.SimulatedAcceleratorEngine;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.examples.ExampleServer;
import io.asyncctx.netty.InlinePolicy;
import io.asyncctx.netty.OffloadConfig;

import java.io.InputStream;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The server side of the harness as its own process: the example server in one mode with one engine, so that its CPU
 * time can be read apart from the client's. Prints {@code listening on https://127.0.0.1:PORT pid PID} when ready and
 * stops when its standard input ends (the harness closes it) or on SIGTERM.
 *
 * <p>Threading: {@link #call()} runs on the main thread and waits on standard input; the server runs on its event
 * loops.
 */
@Command(name = "load-server", mixinStandardHelpOptions = true, sortOptions = false,
        description = "The example server in one mode, for the load harness.")
public final class LoadServer implements Callable<Integer> {

    @Option(names = "--mode", required = true, converter = Modes.class, completionCandidates = Modes.class,
            description = "One of: ${COMPLETION-CANDIDATES}. offload-fd-inline is offload-fd with an InlinePolicy "
                    + "(--inline-below-us), offload-fd-fair offload-fd with OffloadConfig.handshakeStepsPerLoopTurn "
                    + "(--handshake-steps-per-turn).")
    String mode;

    @Option(names = "--engine", description = "One of ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
    HarnessOptions.EngineKind engine = HarnessOptions.EngineKind.software;

    @Option(names = "--latency-ms", converter = HarnessOptions.ZeroOrMore.class,
            description = "Latency of the simulated engine (default: ${DEFAULT-VALUE}).")
    int latencyMillis = 5;

    @CommandLine.Mixin
    HarnessOptions.Workers workers = new HarnessOptions.Workers();

    @CommandLine.Mixin
    HarnessOptions.Loops loops = new HarnessOptions.Loops();

    @CommandLine.Mixin
    HarnessOptions.InlineBelow inlineBelow = new HarnessOptions.InlineBelow();

    @CommandLine.Mixin
    HarnessOptions.HandshakeSteps handshakeSteps = new HarnessOptions.HandshakeSteps();

    @Option(names = "--port", converter = HarnessOptions.Port.class,
            description = "Port, 0 for any (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--cert", required = true, description = "PEM certificate chain.")
    Path cert;

    @Option(names = "--key", required = true, description = "PEM private key of --cert.")
    Path key;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** {@code --mode}: one of {@link #MODES}. */
    static final class Modes extends HarnessOptions.OneOf {
        Modes() {
            super(MODES);
        }
    }

    /** Runs the server process. */
    public static void main(String[] args) {
        System.exit(HarnessOptions.commandLine(new LoadServer()).execute(args));
    }

    @Override
    public Integer call() throws Exception {
        // picocli checked every option's value; what is left is the files, before the engine and the port
        HarnessOptions.Pem pem = HarnessOptions.readPem(spec, cert, key);
        try (AsyncEngine e = newEngine(engine, latencyMillis, workers.workers, new KeyPair(pem.chain()[0]
                .getPublicKey(), pem.key()));
             ExampleServer server = start(mode, loops.threads, port, e, pem.chain(), pem.key(), inlineBelow.micros,
                     handshakeSteps.steps)) {
            System.out.println("listening on https://127.0.0.1:" + server.port() + " pid "
                    + ProcessHandle.current().pid()
                    + " (mode " + mode + ", engine " + e.name() + (server.asyncContext() == null ? ""
                    : ", inline schemes " + server.asyncContext().inlineSchemes()) + ")");
            System.out.flush();
            InputStream in = System.in;
            while (in.read() >= 0) {
                // wait for the harness to close our standard input
            }
            if (server.asyncContext() != null) {
                System.err.println("load-server " + mode + ": " + server.asyncContext().offloadedOperations()
                        + " key operations offloaded, " + server.asyncContext().inlineOperations() + " inline"
                        + (e instanceof SoftwareEngine se ? ", " + se.workerWakeups() + " worker wake-ups" : ""));
            }
        }
        return 0;
    }

    /** The modes the harness knows. */
    static final List<String> MODES = List.of("inline", "blocking", "offload-fd", "offload-callback",
            "offload-fd-inline", "offload-fd-fair");

    /**
     * Starts the example server on 127.0.0.1 in one of {@link #MODES}; {@code inlineBelowMicros} applies to mode
     * offload-fd-inline only ({@code InlinePolicy.belowMeasuredCost}), {@code handshakeStepsPerTurn} to mode
     * offload-fd-fair only ({@code OffloadConfig.handshakeStepsPerLoopTurn}).
     */
    static ExampleServer start(String mode, int threads, int port, AsyncEngine engine, X509Certificate[] chain,
                               PrivateKey key, long inlineBelowMicros, int handshakeStepsPerTurn) throws Exception {
        ExampleServer.Mode m;
        int steps = 0;
        OffloadConfig.Notify n = OffloadConfig.Notify.FD;
        InlinePolicy inline = InlinePolicy.never();
        switch (mode) {
            case "inline" -> m = ExampleServer.Mode.INLINE;
            case "blocking" -> m = ExampleServer.Mode.BLOCKING;
            case "offload-fd" -> m = ExampleServer.Mode.OFFLOAD;
            case "offload-callback" -> {
                m = ExampleServer.Mode.OFFLOAD;
                n = OffloadConfig.Notify.CALLBACK;
            }
            case "offload-fd-inline" -> {
                m = ExampleServer.Mode.OFFLOAD;
                inline = InlinePolicy.belowMeasuredCost(Duration.ofNanos(inlineBelowMicros * 1000));
            }
            case "offload-fd-fair" -> {
                m = ExampleServer.Mode.OFFLOAD;
                if (handshakeStepsPerTurn < 1) {
                    throw new IllegalArgumentException("mode offload-fd-fair needs --handshake-steps-per-turn of 1 or "
                            + "more (it is offload-fd with that bound), got " + handshakeStepsPerTurn);
                }
                steps = handshakeStepsPerTurn;
            }
            default -> throw new IllegalArgumentException("mode " + mode + ": expected one of " + MODES);
        }
        return ExampleServer.builder(m).bind("127.0.0.1", port).transport(ExampleServer.Transport.EPOLL, threads)
                .notify(n).engine(engine, chain).key(key).inline(inline).handshakeStepsPerTurn(steps).start();
    }

    /** A software engine, or a simulated accelerator that computes real signatures after a fixed latency. */
    static AsyncEngine newEngine(HarnessOptions.EngineKind kind, int latencyMillis, int workers, KeyPair keys) {
        return switch (kind) {
            case software -> SoftwareEngine.builder().keyPair(keys).workers(workers)
                    .provider(CryptoProviders.Choice.AUTO).build();
            case simulated -> SimulatedAcceleratorEngine.builder().name("simulated")
                    .latency(Duration.ofMillis(latencyMillis)).ringSize(16384)
                    .signer(JcaKeySigner.withJdkFallback(keys.getPrivate(), keys.getPublic(),
                            CryptoProviders.select(CryptoProviders.Choice.AUTO)))
                    .build();
        };
    }
}
