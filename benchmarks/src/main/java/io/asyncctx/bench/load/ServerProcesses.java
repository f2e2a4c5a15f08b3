package io.asyncctx.bench.load;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Starts the servers the load tools measure, each in its own process: the example server ({@link LoadServer}, or any
 * command that prints {@code listening on https://HOST:PORT}) and nginx with one worker and the same certificate.
 * The CPU of each is read from /proc for its whole process tree.
 *
 * <p>Threading: the static methods may be called from any thread; a {@link Running} is closed by whoever started it.
 */
final class ServerProcesses {

    private static final Pattern LISTENING =
            Pattern.compile("listening on https?://([^:/\\s]+):(\\d+)(?:.*?pid (\\d+))?");

    private ServerProcesses() {
    }

    /** A server under test, started. */
    interface Running extends AutoCloseable {
        String host();

        int port();

        LongSupplier cpu();

        String cpuScope();

        /** The process id whose tree's CPU is counted, or -1. */
        default long pid() {
            return -1;
        }

        @Override
        void close() throws Exception;
    }

    record Simple(String host, int port, long pid, LongSupplier cpu, String cpuScope, AutoCloseable stopper)
            implements Running {
        Simple(String host, int port, LongSupplier cpu, String cpuScope, AutoCloseable stopper) {
            this(host, port, -1, cpu, cpuScope, stopper);
        }

        @Override
        public void close() throws Exception {
            stopper.close();
        }
    }

    /** Starts a server process and waits (up to 60 s) for its "listening on" line. */
    static Running spawn(List<String> cmd, boolean sigterm) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(),
                    StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    lines.add(line);
                }
            } catch (IOException e) {
                // the process ended
            }
        }, "load-server-stdout");
        reader.setDaemon(true);
        reader.start();
        AutoCloseable stop = () -> {
            if (sigterm) {
                p.destroy();
            } else {
                p.getOutputStream().close();
            }
            if (!p.waitFor(15, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        };
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        try {
            while (System.nanoTime() < deadline) {
                String line = lines.poll(200, TimeUnit.MILLISECONDS);
                if (line == null) {
                    if (!p.isAlive() && lines.isEmpty()) {
                        throw new IllegalStateException("server exited with " + p.exitValue() + " before listening: "
                                + cmd);
                    }
                    continue;
                }
                Matcher m = LISTENING.matcher(line);
                if (m.find()) {
                    long pid = m.group(3) != null ? Long.parseLong(m.group(3)) : p.pid();
                    return new Simple(m.group(1), Integer.parseInt(m.group(2)), pid, () -> ProcessCpu.treeCpuNanos(pid),
                            "server process", stop);
                }
            }
            throw new IllegalStateException("server printed no 'listening on https://HOST:PORT' within 60 s: " + cmd);
        } catch (Exception | Error e) {
            stop.close();
            throw e;
        }
    }

    /** Starts nginx (1 worker, TLS 1.3, the same certificate) on a free port; master and worker CPU count. */
    static Running startNginx(Path nginx, Path dir, Path certPem, Path keyPem) throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        Path prefix = Files.createDirectories(dir.toAbsolutePath());
        Path conf = prefix.resolve("nginx.conf");
        Files.writeString(conf, String.join("\n",
                "worker_processes 1;",
                "daemon off;",
                "master_process on;",
                "pid " + prefix.resolve("nginx.pid") + ";",
                "error_log " + prefix.resolve("error.log") + " warn;",
                "events { worker_connections 8192; }",
                "http {",
                "  access_log off;",
                "  client_body_temp_path " + prefix.resolve("body") + ";",
                "  keepalive_requests 10000000;",
                "  keepalive_timeout 300s;",
                "  server {",
                "    listen 127.0.0.1:" + port + " ssl backlog=4096;",
                "    ssl_certificate " + certPem + ";",
                "    ssl_certificate_key " + keyPem + ";",
                "    ssl_protocols TLSv1.3;",
                "    ssl_session_cache off;",
                "    ssl_session_tickets off;",
                "    location / { default_type text/plain; return 200 \"hello from nginx\\n\"; }",
                "  }",
                "}", ""));
        Process p = new ProcessBuilder(nginx.toString(), "-p", prefix.toString(), "-e",
                prefix.resolve("error.log").toString(), "-c", conf.toString())
                .redirectErrorStream(true).redirectOutput(prefix.resolve("stdout.log").toFile()).start();
        AutoCloseable stop = () -> {
            p.destroy(); // SIGTERM: fast shutdown of master and worker
            if (!p.waitFor(15, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            }
        };
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) {
                throw new IllegalStateException("nginx exited with " + p.exitValue() + "; see "
                        + prefix.resolve("error.log"));
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 500);
                long pid = p.pid();
                return new Simple("127.0.0.1", port, pid, () -> ProcessCpu.treeCpuNanos(pid),
                        "nginx master + worker", stop);
            } catch (IOException notYet) {
                TimeUnit.MILLISECONDS.sleep(100);
            }
        }
        stop.close();
        throw new IllegalStateException("nginx did not listen on port " + port + " within 20 s");
    }
}
