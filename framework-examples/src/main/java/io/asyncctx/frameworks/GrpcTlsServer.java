package io.asyncctx.frameworks;

import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.netty.handler.ssl.SslContext;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * gRPC-Java's TLS server as its security guide writes one with grpc-netty (not the shaded artifact), handed the
 * library's context in {@code sslContext(...)}. gRPC wants ALPN with "h2" in the context, and makes the
 * {@code SslHandler} itself around {@code newEngine}: its handshakes are offloaded detached (no per-channel read hold;
 * see the README). Run with {@code java -jar netty-async-ctx-framework-examples.jar grpc [port]}.
 *
 * <p>Threading: {@link #start} from any thread; gRPC serves on its own event loops and executor.
 */
public final class GrpcTlsServer {

    private GrpcTlsServer() {
    }

    /** Serves {@link GreeterService} on 127.0.0.1:{@code port} (0: any free port) until shut down. */
    public static Server start(SslContext ctx, int port, Duration handshakeTimeout) throws IOException {
        // readme:grpc
        return NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", port))
                .sslContext(ctx)
                .handshakeTimeout(handshakeTimeout.toMillis(), TimeUnit.MILLISECONDS)
                .addService(GreeterService.definition())
                .build()
                .start();
        // end
    }

    /** Starts the server on {@code args[0]} (default 8443) with a fresh self-signed P-256 certificate. */
    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 8443;
        X509Bundle cert = ExampleTls.selfSigned("localhost", CertificateBuilder.Algorithm.ecp256);
        try (SoftwareEngine engine = ExampleTls.engine(cert)) {
            AsyncSslContext ctx = ExampleTls.context(engine, cert, "h2");
            Server server = start(ctx, port, Duration.ofSeconds(10));
            System.out.println("grpc: listening on 127.0.0.1:" + server.getPort());
            server.awaitTermination();
        }
    }
}
