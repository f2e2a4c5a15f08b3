package io.asyncctx.frameworks;

import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.netty.handler.ssl.OpenSslX509KeyManagerFactory;
import io.netty.handler.ssl.SslContext;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.KeyCertOptions;

import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Vert.x 5's HTTPS server (HTTP/2 and HTTP/1.1 through ALPN) as its core manual writes one, with the library's
 * context handed over through Vert.x's SSL engine SPI: {@link AsyncSslEngineOptions} (Vert.x has no setter for a
 * ready {@code SslContext}). Vert.x also refuses to start TLS without key material in its options, which it then
 * hands to the context factory: a keyless key manager for the certificate satisfies it (the key stays in the
 * engine). Run with {@code java -jar netty-async-ctx-framework-examples.jar vertx [port]}.
 *
 * <p>Threading: {@link #start} from any thread but a Vert.x event loop (it waits for the listen); Vert.x serves on
 * its own event loops.
 */
public final class VertxTlsServer {

    private VertxTlsServer() {
    }

    /** Serves {@code GET /} on 127.0.0.1:{@code port} (0: any free port) until {@code vertx} closes. */
    public static HttpServer start(Vertx vertx, SslContext ctx, X509Certificate certificate, int port,
                                   Duration handshakeTimeout) throws Exception {
        // readme:vertx
        HttpServerOptions options = new HttpServerOptions()
                .setSsl(true)
                .setUseAlpn(true)
                .setSslEngineOptions(new AsyncSslEngineOptions(ctx))
                .setKeyCertOptions(KeyCertOptions.wrap(OpenSslX509KeyManagerFactory.newKeyless(certificate)))
                .setSslHandshakeTimeout(handshakeTimeout.toMillis())
                .setSslHandshakeTimeoutUnit(TimeUnit.MILLISECONDS);
        return vertx.createHttpServer(options)
                .requestHandler(req -> req.response().end("hello from Vert.x, " + req.version() + "\n"))
                .listen(port, "127.0.0.1")
                .await();
        // end
    }

    /** Starts the server on {@code args[0]} (default 8443) with a fresh self-signed RSA certificate. */
    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 8443;
        X509Bundle cert = ExampleTls.selfSigned("localhost", CertificateBuilder.Algorithm.rsa2048);
        try (SoftwareEngine engine = ExampleTls.engine(cert)) {
            AsyncSslContext ctx = ExampleTls.context(engine, cert, "h2", "http/1.1");
            Vertx vertx = Vertx.vertx();
            HttpServer server = start(vertx, ctx, cert.getCertificate(), port, Duration.ofSeconds(10));
            System.out.println("vertx: listening on https://127.0.0.1:" + server.actualPort() + "/");
            Thread.currentThread().join(); // until killed
        }
    }
}
