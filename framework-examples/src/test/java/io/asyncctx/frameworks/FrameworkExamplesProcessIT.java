package io.asyncctx.frameworks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCalls;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.util.ReferenceCountUtil;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Each example started as the README says ({@code java -jar netty-async-ctx-framework-examples.jar NAME PORT}, port 0
 * here for a free one) and asked by a real client: curl over h2 (Reactor, Vert.x), {@code openssl s_client} with a
 * name (SniHandler), a grpc-java client (gRPC).
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class FrameworkExamplesProcessIT {

    private static final Pattern PORT = Pattern.compile("listening on \\S*?127\\.0\\.0\\.1:(\\d+)");

    static String jar() {
        String jar = System.getProperty("framework-examples.jar", "target/netty-async-ctx-framework-examples.jar");
        assertTrue(Files.exists(Path.of(jar)), "no " + jar + ": run mvn package first");
        return jar;
    }

    /** A running example: its process and the port it printed. */
    record Example(Process process, int port, List<String> output) implements AutoCloseable {
        @Override
        public void close() throws InterruptedException {
            process.destroy();
            if (!process.waitFor(20, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        }
    }

    static Example start(String which) throws Exception {
        Process p = new ProcessBuilder(javaBin(), "-jar", jar(), which, "0").redirectErrorStream(true).start();
        BlockingQueue<Integer> port = new ArrayBlockingQueue<>(1);
        List<String> output = java.util.Collections.synchronizedList(new ArrayList<>());
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(),
                    StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null;) {
                    output.add(line);
                    Matcher m = PORT.matcher(line);
                    if (m.find()) {
                        port.offer(Integer.parseInt(m.group(1)));
                    }
                }
            } catch (java.io.IOException e) {
                // the process ended
            }
        }, "example-output-" + which);
        reader.setDaemon(true);
        reader.start();
        Integer bound = port.poll(60, TimeUnit.SECONDS);
        if (bound == null) {
            p.destroyForcibly();
        }
        assertNotNull(bound, () -> which + " printed no 'listening on' line: " + output);
        return new Example(p, bound, output);
    }

    private static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    @Test
    void shouldServeH2FromTheReactorExample() throws Exception {
        try (Example e = start("reactor")) {
            Peers.Result r = Peers.curl(e.port(), "--http2");
            assertEquals(0, r.exitCode(), r.output());
            assertTrue(r.output().contains("hello from Reactor Netty, HTTP/2.0"), r.output());
        }
    }

    @Test
    void shouldServeH2FromTheVertxExample() throws Exception {
        try (Example e = start("vertx")) {
            Peers.Result r = Peers.curl(e.port(), "--http2");
            assertEquals(0, r.exitCode(), r.output());
            assertTrue(r.output().contains("hello from Vert.x, HTTP_2"), r.output());
        }
    }

    @Test
    void shouldServeEachNameFromTheSniExample() throws Exception {
        try (Example e = start("sni")) {
            Peers.Result r = Peers.sClient(e.port(), SniTlsServer.RSA_NAME);
            assertEquals(0, r.exitCode(), r.output());
            assertTrue(r.output().contains("served CN=" + SniTlsServer.RSA_NAME), r.output());
            r = Peers.sClient(e.port(), "www.ec.example.test");
            assertTrue(r.output().contains("served CN=www.ec.example.test"), r.output());
            r = Peers.sClient(e.port(), null);
            assertTrue(r.output().contains("served CN=localhost"), r.output());
        }
    }

    @Test
    void shouldAnswerAUnaryCallFromTheGrpcExample() throws Exception {
        try (Example e = start("grpc")) {
            SslContext client = GrpcSslContexts.forClient().trustManager(InsecureTrustManagerFactory.INSTANCE).build();
            ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", e.port()).sslContext(client).build();
            try {
                assertEquals("hello jar", ClientCalls.blockingUnaryCall(ch, GreeterService.HELLO,
                        CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), "jar"));
            } finally {
                ch.shutdownNow().awaitTermination(20, TimeUnit.SECONDS);
                ReferenceCountUtil.release(client);
            }
        }
    }
}
