package io.asyncctx.examples;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.netty.InlinePolicy;
import io.asyncctx.netty.OffloadConfig;

import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import sun.misc.Signal;

/**
 * {@code server}: runs the example TLS server until SIGTERM or SIGINT, then shuts down cleanly and exits 0.
 *
 * <p>Threading: {@link #call()} runs on the main thread and waits there; the signal handler runs on the JVM's signal
 * thread and only closes the server.
 */
@Command(name = "server", mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "Serve HTTPS on 127.0.0.1 with handshakes offloaded (or inline, or blocking, to compare).")
final class ServerCommand implements Callable<Integer> {

    @Option(names = "--port", description = "Port to listen on; 0 picks a free one (default: ${DEFAULT-VALUE}).")
    int port = 8443;

    @Option(names = "--host", description = "Address to bind (default: ${DEFAULT-VALUE}).")
    String host = "127.0.0.1";

    @Option(names = "--mode", description = "offload | inline | blocking (default: ${DEFAULT-VALUE}).")
    String mode = "offload";

    @Option(names = "--notify", description = "fd | callback: how a finished operation resumes its handshake "
            + "(default: fd, or callback on nio).")
    String notify;

    @Option(names = "--transport", description = "epoll | io_uring | nio (default: ${DEFAULT-VALUE}).")
    String transport = "epoll";

    @Option(names = "--threads", description = "Event loops (default: ${DEFAULT-VALUE}).")
    int threads = 1;

    @Option(names = "--inline-below-us", description = "Offload mode: sign inline on the event loop the signature "
            + "schemes whose measured cost is below this many microseconds (0 = never, the default; 30 keeps ECDSA "
            + "P-256 and Ed25519 inline with AWS-LC while RSA is offloaded); applies to --http3's QUIC handshakes too.")
    long inlineBelowMicros;

    @Option(names = "--handshake-steps-per-turn", description = "Offload mode only: at most this many handshake "
            + "steps (a read of a handshaking connection, a resume from the engine's wait fd) per event-loop "
            + "iteration, so that established connections are served between the steps of a burst of new handshakes; "
            + "TCP only (--http3's QUIC handshakes are not bounded); 0 = no bound (default: ${DEFAULT-VALUE}).")
    int handshakeStepsPerTurn;

    @Option(names = "--http3", description = "Also serve HTTP/3 over UDP on the same port number, QUIC handshakes "
            + "offloaded the same way; HTTP/1.1 responses then carry Alt-Svc (offload mode only).")
    boolean http3;

    @Mixin
    EngineOptions engineOptions = new EngineOptions();

    @Mixin
    TlsOptions tlsOptions = new TlsOptions();

    @Override
    public Integer call() throws Exception {
        ExampleServer.Mode m;
        ExampleServer.Transport t;
        OffloadConfig.Notify n;
        try {
            m = ExampleServer.Mode.parse(mode);
        } catch (IllegalArgumentException e) {
            throw new BadFlagException("--mode " + mode + ": expected offload, inline or blocking");
        }
        try {
            t = ExampleServer.Transport.parse(transport);
        } catch (IllegalArgumentException e) {
            throw new BadFlagException("--transport " + transport + ": expected epoll, io_uring or nio");
        }
        n = parseNotify(notify, t);
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
            throw new BadFlagException("--handshake-steps-per-turn bounds offloaded handshakes only; --mode " + mode
                    + " signs on the event loop, with nothing to spread over loop turns: use --mode offload, or drop "
                    + "the flag");
        }
        if (port < 0 || port > 65535) {
            throw new BadFlagException("--port " + port + ": expected 0..65535");
        }
        TlsSettings tls = tlsOptions.settings();
        KeyMaterial keys = engineOptions.keyMaterial();
        CountDownLatch stopped = new CountDownLatch(1);
        try (AsyncEngine engine = engineOptions.createEngine(keys)) {
            ExampleServer server;
            try {
                server = new ExampleServer(host, port, m, t, threads, n, engine, keys.chain(), keys.privateKey(),
                        InlinePolicy.belowMeasuredCost(java.time.Duration.ofNanos(inlineBelowMicros * 1000)), tls,
                        handshakeStepsPerTurn);
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
            Runnable stop = () -> {
                try {
                    server.close();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } finally {
                    stopped.countDown();
                }
            };
            Signal.handle(new Signal("TERM"), sig -> stop.run());
            Signal.handle(new Signal("INT"), sig -> stop.run());
            System.out.println("listening on https://" + host + ":" + server.port() + " (mode " + mode
                    + ", engine " + engine.name() + ", transport " + transport + ", notify "
                    + n.toString().toLowerCase(java.util.Locale.ROOT) + ", alpn " + String.join(",", tls.alpn())
                    + (tls.clientAuth() == io.netty.handler.ssl.ClientAuth.NONE ? ""
                    : ", client certificates " + tls.clientAuth().name().toLowerCase(java.util.Locale.ROOT)) + ")");
            if (http3) {
                System.out.println("HTTP/3 on udp://" + host + ":" + server.port() + " (QUIC, offloaded)");
            }
            System.out.flush();
            stopped.await();
        }
        System.out.println("stopped");
        return 0;
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

    static OffloadConfig.Notify parseNotify(String notify, ExampleServer.Transport t) {
        if (notify == null) {
            return t == ExampleServer.Transport.NIO ? OffloadConfig.Notify.CALLBACK : OffloadConfig.Notify.FD;
        }
        return switch (notify) {
            case "fd" -> OffloadConfig.Notify.FD;
            case "callback" -> OffloadConfig.Notify.CALLBACK;
            default -> throw new BadFlagException("--notify " + notify + ": expected fd or callback");
        };
    }
}
