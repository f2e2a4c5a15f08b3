package io.asyncctx.frameworks;


import io.netty.handler.ssl.util.InsecureTrustManagerFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;

/**
 * The real peers of the framework tests: command-line clients (curl, h2load, openssl s_client) run as processes, and
 * raw sockets that send a real ClientHello and then stall or flood. Also the waits and fd counts the tests share.
 *
 * <p>Threading: static helpers for the test thread.
 */
final class Peers {

    /** The paused-handshake flood bound of the plain path (RobustPausedReadsTest): well under this. */
    static final long FLOOD_LIMIT = 16L << 20;
    /** Stop flooding after this much whatever happens (an unheld server takes hundreds of MB). */
    static final long FLOOD_CAP = 96L << 20;
    static final Duration FLOOD_MAX = Duration.ofSeconds(3);
    static final Duration FLOOD_STALL = Duration.ofMillis(600);

    private Peers() {
    }

    /** Result of a command-line peer. */
    record Result(int exitCode, String output) {
    }

    /** Runs a command with stdin fed {@code input} (or closed), bounded in time; stdout and stderr merged. */
    static Result run(List<String> command, String input, long timeoutSeconds) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        ExecutorService reader = Executors.newSingleThreadExecutor();
        try {
            Future<String> out = reader.submit(() -> readAll(p.getInputStream()));
            if (input != null) {
                p.getOutputStream().write(input.getBytes(StandardCharsets.US_ASCII));
            }
            p.getOutputStream().close();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                throw new AssertionError("timed out after " + timeoutSeconds + " s: " + command);
            }
            return new Result(p.exitValue(), out.get(5, TimeUnit.SECONDS));
        } finally {
            p.destroyForcibly();
            reader.shutdownNow();
        }
    }

    private static String readAll(InputStream in) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        in.transferTo(bos);
        return bos.toString(StandardCharsets.UTF_8);
    }

    /** {@code curl -sS -k [extra] https://127.0.0.1:port/}, one full handshake (a new process has no session). */
    static Result curl(int port, String... extra) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("curl", "-sS", "-k", "--max-time", "20"));
        cmd.addAll(Arrays.asList(extra));
        cmd.add("https://127.0.0.1:" + port + "/");
        return run(cmd, null, 30);
    }

    /**
     * {@code openssl s_client} to 127.0.0.1:port with {@code -servername name} (or {@code -noservername} when null),
     * no session ticket, sending one HTTP/1.1 request.
     */
    static Result sClient(int port, String name) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + port,
                "-no_ticket", "-ign_eof", "-alpn", "http/1.1"));
        if (name == null) {
            cmd.add("-noservername");
        } else {
            cmd.addAll(List.of("-servername", name));
        }
        String host = name == null ? "localhost" : name;
        return run(cmd, "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n", 30);
    }

    /** A real TLS 1.3 ClientHello (JDK client), with server name {@code sni} unless null. */
    static byte[] clientHello(String sni) throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLSv1.3");
        ctx.init(null, InsecureTrustManagerFactory.INSTANCE.getTrustManagers(), null);
        SSLEngine engine = ctx.createSSLEngine();
        engine.setUseClientMode(true);
        SSLParameters params = engine.getSSLParameters();
        params.setServerNames(sni == null ? List.of() : List.of(new SNIHostName(sni)));
        params.setApplicationProtocols(new String[] {"h2", "http/1.1"});
        engine.setSSLParameters(params);
        ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
        engine.wrap(ByteBuffer.allocate(0), out);
        out.flip();
        byte[] hello = new byte[out.remaining()];
        out.get(hello);
        if (hello.length < 50 || hello[0] != 0x16) {
            throw new AssertionError("not a handshake record: " + Arrays.toString(Arrays.copyOf(hello, 8)));
        }
        return hello;
    }

    /** A blocking socket connected to 127.0.0.1:port, Nagle off. */
    static SocketChannel connect(int port) throws IOException {
        SocketChannel ch = SocketChannel.open(new InetSocketAddress("127.0.0.1", port));
        ch.socket().setTcpNoDelay(true);
        return ch;
    }

    static void await(String what, BooleanSupplier condition) throws InterruptedException {
        await(what, Duration.ofSeconds(20), condition);
    }

    static void await(String what, Duration timeout, BooleanSupplier condition) throws InterruptedException {
        io.asyncctx.testkit.Await.until(what, timeout, condition);
    }

    /** Open fds of this process (sockets, eventfds, epoll fds, files). */
    static int openFds() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return (int) s.count() - 1; // the listing's own
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Waits until the process has {@code expected} open fds again (closing is asynchronous on the loops). */
    static void awaitFds(int expected) throws InterruptedException {
        io.asyncctx.testkit.Await.until(() -> "open fds: " + openFds() + ", expected " + expected + " or fewer",
                Duration.ofSeconds(15), () -> openFds() <= expected);
    }

    /** Seconds since {@code startNanos}. */
    static double secondsSince(long startNanos) {
        return (System.nanoTime() - startNanos) / 1e9;
    }
}
