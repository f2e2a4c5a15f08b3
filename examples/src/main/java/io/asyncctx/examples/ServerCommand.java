package io.asyncctx.examples;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.netty.InlinePolicy;
import io.asyncctx.netty.OffloadConfig;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import sun.misc.Signal;

/**
 * {@code server}: runs the example TLS server until SIGTERM or SIGINT, then drains (in-flight handshakes and requests
 * finish, up to {@code --shutdown-grace}; a second signal cuts it short), closes the engine and exits 0.
 *
 * <p>Threading: {@link #call()} runs on the main thread and waits there; the signal handler runs on the JVM's signal
 * thread: the first signal starts the drain on a thread of its own, the second closes every connection.
 */
@Command(name = "server", mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "Serve HTTPS on 127.0.0.1 with handshakes offloaded (or inline, or blocking, to compare).")
final class ServerCommand implements Callable<Integer> {

    @Option(names = "--port", description = "Port to listen on; 0 picks a free one (default: ${DEFAULT-VALUE}).")
    int port = 8443;

    @Option(names = "--host", description = "Address to bind (default: ${DEFAULT-VALUE}).")
    String host = "127.0.0.1";

    @Option(names = "--mode", converter = Choices.ModeChoice.class, completionCandidates = Choices.ModeChoice.class,
            description = "${COMPLETION-CANDIDATES} (default: offload).")
    ExampleServer.Mode mode = ExampleServer.Mode.OFFLOAD;

    @Option(names = "--notify", converter = Choices.NotifyChoice.class, completionCandidates = Choices.NotifyChoice.class,
            description = "${COMPLETION-CANDIDATES}: how a finished operation resumes its handshake (default: fd, or "
                    + "callback on nio).")
    OffloadConfig.Notify notify;

    @Option(names = "--transport", converter = Choices.TransportChoice.class,
            completionCandidates = Choices.TransportChoice.class,
            description = "${COMPLETION-CANDIDATES} (default: epoll).")
    ExampleServer.Transport transport = ExampleServer.Transport.EPOLL;

    @Option(names = "--threads", description = "Event loops (default: ${DEFAULT-VALUE}).")
    int threads = 1;

    @Option(names = "--inline-below-us", description = "Offload mode: sign inline on the event loop the signature "
            + "schemes whose measured cost is below this many microseconds (0 = never, the default; 30 keeps ECDSA "
            + "P-256 and Ed25519 inline with AWS-LC while RSA is offloaded); applies to --http3's QUIC handshakes too.")
    long inlineBelowMicros;

    @Option(names = "--handshake-steps-per-turn", paramLabel = "N", description = "Offload mode only: at most this "
            + "many handshake "
            + "steps (a read of a handshaking connection, a resume from the engine's wait fd) per event-loop "
            + "iteration, so that established connections are served between the steps of a burst of new handshakes; "
            + "TCP only (--http3's QUIC handshakes are not bounded); 0 = no bound (default: ${DEFAULT-VALUE}).")
    int handshakeStepsPerTurn;

    @Option(names = "--http3", description = "Also serve HTTP/3 over UDP on the same port number, QUIC handshakes "
            + "offloaded the same way; HTTP/1.1 responses then carry Alt-Svc (offload mode only).")
    boolean http3;

    @Option(names = "--handshake-timeout", paramLabel = "SECONDS", description = "Close a connection whose TLS "
            + "handshake is not done after this many seconds (default: ${DEFAULT-VALUE}, as Netty).")
    long handshakeTimeoutSeconds = 10;

    @Option(names = "--idle-timeout", paramLabel = "SECONDS", description = "Close an established connection with no "
            + "request in flight and no traffic for this many seconds; HTTP/2 gets GOAWAY first (default: "
            + "${DEFAULT-VALUE}, as nginx's keepalive_timeout).")
    long idleTimeoutSeconds = 75;

    @Option(names = "--shutdown-grace", paramLabel = "SECONDS", description = "On SIGTERM or SIGINT: stop accepting "
            + "and let handshakes and requests in flight finish for at most this many seconds, then close what is left "
            + "(0 = no bound, as nginx's default; a second signal stops at once; default: ${DEFAULT-VALUE}).")
    long shutdownGraceSeconds = 30;

    @Option(names = "--failed-handshake-log", paramLabel = "LEVEL", description = "info | debug | off: one line per "
            + "failed handshake with peer and reason, at most 20 per 10 s plus a summary; debug adds engine failures' "
            + "cause chains; off logs nothing (the counts stay in /metrics) (default: ${DEFAULT-VALUE}).")
    String failedHandshakeLog = "info";

    @Option(names = "--site", paramLabel = "NAME,CERT,KEY[,CERT2,KEY2]", description = "Serve a site (repeat for "
            + "more, all on one port): NAME a server name (shop.example.org) or a one-label wildcard (*.example.org); "
            + "the first --site also answers clients without SNI or with an unknown name. CERT a PEM chain, KEY its PEM "
            + "key (signed by --engine: software or simulated) or a pkcs11: URI of a key on a token; CERT2,KEY2 a "
            + "second pair of the other type (RSA and ECDSA side by side). Reloaded on SIGHUP and when a file is "
            + "replaced (atomic rename). Offload mode only; instead of --cert/--key.")
    java.util.List<String> siteFlags = new java.util.ArrayList<>();

    @Option(names = "--ticket-keys", paramLabel = "FILE", description = "With --site: TLS session ticket keys, "
            + "48 bytes each (openssl rand 48 > FILE; several keys concatenated: the first encrypts, all decrypt), "
            + "shared by every site and by every server given the same file; reloaded with the sites.")
    java.nio.file.Path ticketKeys;

    @Mixin
    EngineOptions engineOptions = new EngineOptions();

    @Mixin
    TlsOptions tlsOptions = new TlsOptions();

    @Override
    public Integer call() throws Exception {
        // Parsed and checked by picocli before call() runs (the converters in Choices).
        ExampleServer.Mode m = mode;
        ExampleServer.Transport t = transport;
        OffloadConfig.Notify n = notify != null ? notify
                : t == ExampleServer.Transport.NIO ? OffloadConfig.Notify.CALLBACK : OffloadConfig.Notify.FD;
        if (inlineBelowMicros < 0) {
            throw new BadFlagException("--inline-below-us " + inlineBelowMicros + ": expected 0 or more");
        }
        if (threads < 1) {
            throw new BadFlagException("--threads " + threads + ": expected at least 1");
        }
        if (handshakeStepsPerTurn < 0) {
            throw new BadFlagException("--handshake-steps-per-turn " + handshakeStepsPerTurn
                    + ": expected 0 (no bound) or more");
        }
        if (handshakeStepsPerTurn > 0 && m != ExampleServer.Mode.OFFLOAD) {
            throw new BadFlagException("--handshake-steps-per-turn bounds offloaded handshakes only; --mode "
                    + label(mode) + " signs on the event loop, with nothing to spread over loop turns: use --mode offload, or drop "
                    + "the flag");
        }
        if (port < 0 || port > 65535) {
            throw new BadFlagException("--port " + port + ": expected 0..65535");
        }
        ServerPolicy policy;
        try {
            policy = new ServerPolicy(Duration.ofSeconds(handshakeTimeoutSeconds), Duration.ofSeconds(idleTimeoutSeconds),
                    Duration.ofSeconds(shutdownGraceSeconds), FailedHandshakes.Level.parse(failedHandshakeLog));
        } catch (IllegalArgumentException | ArithmeticException e) {
            throw new BadFlagException(e.getMessage());
        }
        TlsSettings tls = tlsOptions.settings();
        boolean withSites = !siteFlags.isEmpty();
        ExampleServer.SitesFactory sitesFactory = null;
        KeyMaterial keys = null;
        if (withSites) {
            if (http3) {
                throw new BadFlagException("--http3 serves one certificate; it cannot be combined with --site");
            }
            java.util.List<Sites.Spec> specs = siteFlags.stream().map(Sites.Spec::parse).toList();
            Sites.KeySource source = engineOptions.siteKeys();
            java.nio.file.Path ticketFile = ticketKeys;
            sitesFactory = perContext -> new Sites(specs, ticketFile, perContext, source);
        } else {
            if (ticketKeys != null) {
                throw new BadFlagException("--ticket-keys shares ticket keys between the sites of --site: give --site "
                        + "NAME,CERT,KEY too");
            }
            keys = engineOptions.keyMaterial();
        }
        CountDownLatch stopped = new CountDownLatch(1);
        try (AsyncEngine engine = withSites ? null : engineOptions.createEngine(keys)) {
            ExampleServer server;
            try {
                ExampleServer.Builder b = ExampleServer.builder(m).bind(host, port).transport(t, threads).notify(n)
                        .inline(InlinePolicy.belowMeasuredCost(java.time.Duration.ofNanos(inlineBelowMicros * 1000)))
                        .settings(tls).handshakeStepsPerTurn(handshakeStepsPerTurn).policy(policy)
                        .sites(sitesFactory);
                if (!withSites) {
                    b.engine(engine, keys.chain()).key(keys.privateKey());
                }
                server = b.start();
                if (http3) {
                    server.startHttp3();
                }
            } catch (IllegalArgumentException | IllegalStateException e) {
                throw new BadFlagException(e.getMessage());
            } catch (javax.net.ssl.SSLException e) {
                throw new BadFlagException("cannot build the TLS context (check --ciphers, --groups, --tls-versions): "
                        + e.getMessage());
            } catch (Exception e) {
                if (isAddressInUse(e)) {
                    throw new BadFlagException("--port " + port + ": " + host + ":" + port + " is already in use; "
                            + "stop what listens there or choose another port (--port 0 picks a free one)");
                }
                throw e;
            }
            AtomicInteger signals = new AtomicInteger();
            AtomicReference<String> drained = new AtomicReference<>("");
            Runnable drain = () -> {
                try {
                    drained.set(server.shutdownGracefully(policy.shutdownGrace()));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } finally {
                    stopped.countDown();
                }
            };
            sun.misc.SignalHandler onSignal = sig -> {
                if (signals.incrementAndGet() == 1) {
                    System.out.println("draining (" + sig.getName() + "): no new connections; in-flight handshakes "
                            + "and requests get up to " + (policy.shutdownGrace().isZero() ? "no bound"
                            : policy.shutdownGrace().toSeconds() + " s") + "; signal again to stop at once");
                    System.out.flush();
                    new Thread(drain, "shutdown").start();
                } else {
                    System.out.println("stopping at once (" + sig.getName() + " again)");
                    System.out.flush();
                    server.closeNow();
                }
            };
            Signal.handle(new Signal("TERM"), onSignal);
            Signal.handle(new Signal("INT"), onSignal);
            System.out.println("listening on https://" + host + ":" + server.port() + " (mode " + label(mode)
                    + (engine != null ? ", engine " + engine.name() : ", sites " + siteSummary(server)) + ", transport " + label(transport) + ", notify "
                    + n.toString().toLowerCase(java.util.Locale.ROOT) + ", alpn " + String.join(",", tls.alpn())
                    + (tls.clientAuth() == io.netty.handler.ssl.ClientAuth.NONE ? ""
                    : ", client certificates " + tls.clientAuth().name().toLowerCase(java.util.Locale.ROOT)) + ")");
            System.out.println(server.tlsSummary() + "; handshake timeout " + handshakeTimeoutSeconds
                    + " s, idle timeout " + idleTimeoutSeconds + " s, shutdown grace "
                    + (shutdownGraceSeconds == 0 ? "unbounded" : shutdownGraceSeconds + " s"));
            if (http3) {
                System.out.println("HTTP/3 on udp://" + host + ":" + server.port() + " (QUIC, offloaded)");
            }
            System.out.flush();
            stopped.await();
            System.out.println(drained.get());
        }
        System.out.println("stopped");
        return 0;
    }

    /** {@code name=engine[+engine2]} per site, the first (the default) first. */
    private static String siteSummary(ExampleServer server) {
        StringBuilder sb = new StringBuilder();
        for (io.asyncctx.netty.AsyncSniMapping.SiteMetrics s : server.sites().mapping().metrics()) {
            sb.append(sb.length() == 0 ? "" : " ").append(s.site()).append('=').append(s.engine());
        }
        return sb.toString();
    }

    /** A bind that failed because the address is taken (NIO: BindException; epoll, io_uring: errno EADDRINUSE). */
    static boolean isAddressInUse(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof java.net.BindException
                    || (t.getMessage() != null && t.getMessage().contains("Address already in use"))) {
                return true;
            }
        }
        return false;
    }

    /** An enum constant as the command line spells it: lower case. */
    static String label(Enum<?> e) {
        return e.name().toLowerCase(java.util.Locale.ROOT);
    }
}
