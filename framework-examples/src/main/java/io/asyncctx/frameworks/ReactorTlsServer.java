package io.asyncctx.frameworks;

import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.netty.handler.ssl.SslContext;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import reactor.core.publisher.Mono;
import reactor.netty.DisposableServer;
import reactor.netty.http.HttpProtocol;
import reactor.netty.http.server.HttpServer;

import java.time.Duration;

/**
 * Reactor Netty's HTTPS server as its reference guide writes one, HTTP/2 and HTTP/1.1 over TLS, handed the library's
 * context in {@code secure(...)}: Reactor makes the {@code SslHandler} from it, and that handler offloads the
 * handshake's key operation by itself. Run with {@code java -jar netty-async-ctx-framework-examples.jar reactor
 * [port]}.
 *
 * <p>Threading: {@link #start} from any thread; Reactor serves on its own event loops.
 */
public final class ReactorTlsServer {

    private ReactorTlsServer() {
    }

    /** Serves {@code GET /} on 127.0.0.1:{@code port} (0: any free port) until the server is disposed. */
    public static DisposableServer start(SslContext ctx, int port, Duration handshakeTimeout) {
        // readme:reactor
        return HttpServer.create()
                .host("127.0.0.1").port(port)
                .protocol(HttpProtocol.H2, HttpProtocol.HTTP11)
                .secure(spec -> spec.sslContext(ctx).handshakeTimeout(handshakeTimeout))
                .handle((req, res) -> res.sendString(Mono.just("hello from Reactor Netty, " + req.version() + "\n")))
                .bindNow();
        // end
    }

    /** Starts the server on {@code args[0]} (default 8443) with a fresh self-signed RSA certificate. */
    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 8443;
        X509Bundle cert = ExampleTls.selfSigned("localhost", CertificateBuilder.Algorithm.rsa2048);
        try (SoftwareEngine engine = ExampleTls.engine(cert)) {
            AsyncSslContext ctx = ExampleTls.context(engine, cert, "h2", "http/1.1");
            DisposableServer server = start(ctx, port, Duration.ofSeconds(10));
            System.out.println("reactor: listening on https://127.0.0.1:" + server.port() + "/");
            server.onDispose().block();
        }
    }
}
