package io.asyncctx.bench.load;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.AsyncSslContextBuilder;
import io.asyncctx.netty.InlinePolicy;
import io.asyncctx.netty.OffloadConfig;
import io.asyncctx.netty.SessionTicketFlusher;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
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
import reactor.core.publisher.Mono;
import reactor.netty.DisposableServer;
import reactor.netty.NettyPipeline;
import reactor.netty.http.HttpProtocol;
import reactor.netty.http.server.HttpServer;
import reactor.netty.resources.LoopResources;

/**
 * A Reactor Netty HTTPS server for the h2load harness, written the way Reactor's documentation writes one
 * ({@code HttpServer.secure(spec -> spec.sslContext(ctx))}), with either a stock Netty context (the key in memory,
 * BoringSSL signs on the event loop) or this library's {@link AsyncSslContext} handed over in the same one line: what
 * offload costs inside a framework's own pipeline. Prints {@code listening on https://127.0.0.1:PORT pid PID} when
 * ready and stops when its standard input ends.
 *
 * <p>Threading: {@link #call()} runs on the main thread and waits on standard input; the server runs on Reactor's
 * event loops ({@code --threads}).
 */
@Command(name = "reactor-load-server", mixinStandardHelpOptions = true,
        description = "A Reactor Netty HTTPS server, stock or offloaded, for the load harness.")
public final class ReactorLoadServer implements Callable<Integer> {

    /**
     * The modes: the stock context (also with the library's {@link SessionTicketFlusher} after Reactor's SslHandler,
     * so that it sends the tickets as the library's handler does), the offloaded one, and the offloaded one with the
     * inline policy.
     */
    static final List<String> MODES = List.of("reactor-stock", "reactor-stock-flush", "reactor-offload",
            "reactor-offload-inline");

    @Option(names = "--mode", required = true, converter = Modes.class, completionCandidates = Modes.class,
            description = "One of: ${COMPLETION-CANDIDATES}.")
    String mode;

    @CommandLine.Mixin
    HarnessOptions.Workers workers = new HarnessOptions.Workers();

    @CommandLine.Mixin
    HarnessOptions.Loops loops = new HarnessOptions.Loops();

    @CommandLine.Mixin
    HarnessOptions.InlineBelow inlineBelow = new HarnessOptions.InlineBelow();

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
        System.exit(HarnessOptions.commandLine(new ReactorLoadServer()).execute(args));
    }

    @Override
    public Integer call() throws Exception {
        // picocli checked every option's value; what is left is the files, before the engine and the port
        HarnessOptions.Pem pem = HarnessOptions.readPem(spec, cert, key);
        X509Certificate[] chain = pem.chain();
        PrivateKey pk = pem.key();
        ApplicationProtocolConfig alpn = new ApplicationProtocolConfig(ApplicationProtocolConfig.Protocol.ALPN,
                ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
                ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT,
                ApplicationProtocolNames.HTTP_2, ApplicationProtocolNames.HTTP_1_1);
        AsyncEngine engine = null;
        SslContext ctx;
        AsyncSslContext async = null;
        if (mode.startsWith("reactor-stock")) {
            ctx = SslContextBuilder.forServer(pk, chain).sslProvider(SslProvider.OPENSSL)
                    .applicationProtocolConfig(alpn).build();
        } else {
            engine = LoadServer.newEngine(HarnessOptions.EngineKind.software, 0, workers.workers,
                    new KeyPair(chain[0].getPublicKey(), pk));
            InlinePolicy inline = mode.equals("reactor-offload-inline")
                    ? InlinePolicy.belowMeasuredCost(Duration.ofNanos(inlineBelow.micros * 1000))
                    : InlinePolicy.never();
            async = AsyncSslContextBuilder.forServer(engine, chain).applicationProtocolConfig(alpn)
                    .offloadConfig(OffloadConfig.builder().notify(OffloadConfig.Notify.FD).build())
                    .inlinePolicy(inline).build();
            ctx = async;
        }
        // Named so that ProcessCpu counts these threads as the event loop ("EventLoop-epoll-1").
        LoopResources loopResources = LoopResources.create("EventLoop", 1, loops.threads, true);
        byte[] body = "hello\n".getBytes(StandardCharsets.US_ASCII);
        SslContext tls = ctx;
        boolean flushTickets = mode.equals("reactor-stock-flush");
        DisposableServer server = HttpServer.create().host("127.0.0.1").port(0).runOn(loopResources)
                .doOnChannelInit((observer, channel, remote) -> {
                    if (flushTickets) {
                        channel.pipeline().addAfter(NettyPipeline.SslHandler, "tickets", new SessionTicketFlusher());
                    }
                })
                .protocol(HttpProtocol.HTTP11, HttpProtocol.H2)
                .secure(ssl -> ssl.sslContext(tls))
                .handle((req, res) -> res.header("content-type", "text/plain")
                        .sendByteArray(Mono.just(body)))
                .bindNow();
        try {
            System.out.println("listening on https://127.0.0.1:" + server.port() + " pid "
                    + ProcessHandle.current().pid() + " (mode " + mode + ")");
            System.out.flush();
            InputStream in = System.in;
            while (in.read() >= 0) {
                // wait for the harness to close our standard input
            }
            if (async != null) {
                System.err.println("reactor-load-server " + mode + ": " + async.offloadedOperations()
                        + " key operations offloaded (" + async.detachedOperations() + " detached), "
                        + async.inlineOperations() + " inline");
            }
        } finally {
            server.disposeNow();
            loopResources.disposeLater().block(Duration.ofSeconds(10));
            if (engine != null) {
                engine.close();
            }
        }
        return 0;
    }
}
