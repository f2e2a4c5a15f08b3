package io.asyncctx.bench.load;

import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.testkit.SimulatedAcceleratorEngine;
import io.asyncctx.examples.Machine;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.AsyncSslContextBuilder;
import io.asyncctx.netty.OffloadConfig;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import javax.management.ObjectName;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Target 5: pauses {@code --connections} handshakes at once on one event loop with a slow simulated accelerator,
 * measures the library's heap per paused connection (a class histogram of live objects: the {@code io.asyncctx}
 * classes, before and while paused) and the process's eventfd count, then lets them all complete and counts the
 * successes. Server and client run in this JVM (two fds per connection: raise {@code ulimit -n} above twice the
 * connections).
 *
 * <p>Threading: runs on the main thread; the server and the client have one event loop each; every wait is bounded.
 */
@Command(name = "PausedHandshakesProbe", mixinStandardHelpOptions = true,
        description = "Many handshakes paused at once on one loop: library heap per paused connection, fd count.")
public final class PausedHandshakesProbe implements Callable<Integer> {

    @Option(names = "--connections", converter = HarnessOptions.OneOrMore.class,
            description = "Handshakes to pause at once (default: ${DEFAULT-VALUE}).")
    int connections = 10_000;

    @Option(names = "--latency-s", converter = HarnessOptions.OneOrMore.class, description = "Engine latency: how "
            + "long each stays paused (default: ${DEFAULT-VALUE}).")
    int latencySeconds = 40;

    @Option(names = "--fd-mode", description = "One of ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
    FdMode fdMode = FdMode.SHARED_PER_LOOP;

    @Option(names = "--client-of", hidden = true, converter = HarnessOptions.Port.class,
            description = "Internal: run only the client against this port.")
    int clientOf;

    /** Runs the probe. */
    public static void main(String[] args) {
        System.exit(HarnessOptions.commandLine(new PausedHandshakesProbe()).execute(args));
    }

    @Override
    public Integer call() throws Exception {
        if (clientOf > 0) {
            return runClient(clientOf);
        }
        System.out.println("machine: " + Machine.describe() + ", load average " + Machine.loadAverage());
        X509Bundle b = new CertificateBuilder().subject("CN=localhost").addSanIpAddress("127.0.0.1")
                .setIsCertificateAuthority(true).algorithm(CertificateBuilder.Algorithm.ecp256).buildSelfSigned();
        X509Certificate[] chain = {b.getCertificate()};
        long timeoutMillis = TimeUnit.SECONDS.toMillis(latencySeconds + 120);
        EventLoopGroup serverGroup = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        AtomicLong serverHandshakes = new AtomicLong();
        try (SimulatedAcceleratorEngine engine = SimulatedAcceleratorEngine.builder().name("slow")
                .latency(Duration.ofSeconds(latencySeconds)).ringSize(connections + 16).fdMode(fdMode).signerThreads(1)
                .signer(JcaKeySigner.withJdkFallback(b.getKeyPair().getPrivate(), b.getKeyPair().getPublic(),
                        CryptoProviders.select(CryptoProviders.Choice.AUTO)))
                .build()) {
            AsyncSslContext tls = AsyncSslContextBuilder.forServer(engine, chain).protocols("TLSv1.3")
                    .offloadConfig(OffloadConfig.builder().notify(OffloadConfig.Notify.FD).maxJobsPerLoop(connections)
                            .operationTimeout(Duration.ofSeconds(latencySeconds + 60)).build())
                    .build();
            Channel server = new ServerBootstrap().group(serverGroup).channel(EpollServerSocketChannel.class)
                    .option(ChannelOption.SO_BACKLOG, 16384)
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            SslHandler h = tls.newHandler(ch.alloc());
                            h.setHandshakeTimeoutMillis(timeoutMillis);
                            h.handshakeFuture().addListener(f -> {
                                if (f.isSuccess()) {
                                    serverHandshakes.incrementAndGet();
                                }
                            });
                            ch.pipeline().addLast(h);
                        }
                    }).bind("127.0.0.1", 0).sync().channel();
            int port = ((java.net.InetSocketAddress) server.localAddress()).getPort();
            long libBefore = libraryBytes();
            long heapBefore = usedHeapAfterGc();
            long eventFdsBefore = eventFds();
            System.out.printf(Locale.ROOT, "before: io.asyncctx live objects %d bytes, used heap %d KiB, eventfds %d%n",
                    libBefore, heapBefore / 1024, eventFdsBefore);

            long t0 = System.nanoTime();
            // The client runs in its own JVM: one process cannot hold both ends of 10,000 connections under a
            // 20,000-fd limit.
            String java = ProcessHandle.current().info().command().orElse("java");
            Process clientProc = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                    PausedHandshakesProbe.class.getName(), "--client-of", Integer.toString(port), "--connections",
                    Integer.toString(connections), "--latency-s", Integer.toString(latencySeconds))
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.INHERIT).start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(latencySeconds);
            while (engine.inFlight() < connections && System.nanoTime() < deadline) {
                TimeUnit.MILLISECONDS.sleep(50);
            }
            int paused = engine.inFlight();
            double pausedAfter = (System.nanoTime() - t0) / 1e9;
            long libPaused = libraryBytes();
            long heapPaused = usedHeapAfterGc();
            long eventFdsPaused = eventFds();
            boolean stillPaused = engine.inFlight() == paused && engine.completed() == 0;
            System.out.printf(Locale.ROOT, "paused: %d handshakes in the engine at once %.1f s after the first "
                            + "connect (max in flight %d, none completed yet: %s)%n", paused, pausedAfter,
                    engine.maxInFlight(), stillPaused);
            System.out.printf(Locale.ROOT, "paused: io.asyncctx live objects %d bytes -> %.0f bytes per paused "
                            + "connection; used heap %d KiB -> %.0f bytes per connection (server side: Netty channel, "
                            + "SslHandler, BoringSSL's Java side and the library); eventfds %d (before %d)%n",
                    libPaused,
                    (libPaused - libBefore) / (double) paused, heapPaused / 1024,
                    (heapPaused - heapBefore) / (double) paused, eventFdsPaused, eventFdsBefore);
            System.out.println("top io.asyncctx classes while paused:");
            histogram().lines().filter(l -> l.contains(" io.asyncctx.") && !l.contains("io.asyncctx.bench."))
                    .limit(12).forEach(System.out::println);

            boolean clientDone = clientProc.waitFor(timeoutMillis, TimeUnit.MILLISECONDS);
            if (!clientDone) {
                clientProc.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
            int clientCode = clientDone ? clientProc.exitValue() : -1;
            System.out.printf(Locale.ROOT, "completed: client exit %d, %d server handshakes, %.1f s after the first "
                            + "connect; engine completed %d, failed %d, signals %d, batches %d; eventfds now %d%n",
                    clientCode, serverHandshakes.get(), (System.nanoTime() - t0) / 1e9, engine.completed(),
                    engine.failed(), engine.signals(), engine.batches(), eventFds());
            server.close().await(10, TimeUnit.SECONDS);
            return clientCode == 0 && serverHandshakes.get() == connections ? 0 : 1;
        } finally {
            serverGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).await(30, TimeUnit.SECONDS);
        }
    }

    /** The client process: opens the connections, waits for every handshake, exits 0 when all succeeded. */
    private int runClient(int port) throws Exception {
        long timeoutMillis = TimeUnit.SECONDS.toMillis(latencySeconds + 120);
        EventLoopGroup clientGroup = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        try {
            SslContext client = SslContextBuilder.forClient().sslProvider(SslProvider.OPENSSL)
                    .trustManager(InsecureTrustManagerFactory.INSTANCE).protocols("TLSv1.3").build();
            Bootstrap boot = new Bootstrap().group(clientGroup).channel(EpollSocketChannel.class)
                    .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 30_000)
                    .handler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            SslHandler h = client.newHandler(ch.alloc());
                            h.setHandshakeTimeoutMillis(timeoutMillis);
                            ch.pipeline().addLast(h);
                        }
                    });
            List<ChannelFuture> conns = new ArrayList<>(connections);
            for (int i = 0; i < connections; i++) {
                conns.add(boot.connect("127.0.0.1", port));
                if (i % 500 == 499) {
                    conns.get(i).await(30, TimeUnit.SECONDS); // pace the connects a little
                }
            }
            long ok = 0;
            long failed = 0;
            Throwable firstFailure = null;
            long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
            for (ChannelFuture f : conns) {
                long left = Math.max(1, TimeUnit.NANOSECONDS.toMillis(end - System.nanoTime()));
                if (!f.await(left) || !f.isSuccess()) {
                    failed++;
                    firstFailure = firstFailure == null ? f.cause() : firstFailure;
                    continue;
                }
                SslHandler h = f.channel().pipeline().get(SslHandler.class);
                left = Math.max(1, TimeUnit.NANOSECONDS.toMillis(end - System.nanoTime()));
                if (h.handshakeFuture().await(left) && h.handshakeFuture().isSuccess()) {
                    ok++;
                } else {
                    failed++;
                    firstFailure = firstFailure == null ? h.handshakeFuture().cause() : firstFailure;
                }
            }
            System.out.printf(Locale.ROOT, "client: %d handshakes succeeded, %d failed%s%n", ok, failed,
                    firstFailure == null ? "" : " (first: " + firstFailure + ")");
            for (ChannelFuture f : conns) {
                f.channel().close();
            }
            return failed == 0 ? 0 : 1;
        } finally {
            clientGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).await(30, TimeUnit.SECONDS);
        }
    }

    private static long usedHeapAfterGc() throws InterruptedException {
        MemoryMXBean mx = ManagementFactory.getMemoryMXBean();
        for (int i = 0; i < 3; i++) {
            System.gc();
            TimeUnit.MILLISECONDS.sleep(100);
        }
        return mx.getHeapMemoryUsage().getUsed();
    }

    /** The class histogram of live objects (a full GC), as jcmd GC.class_histogram prints it. */
    private static String histogram() throws Exception {
        return (String) ManagementFactory.getPlatformMBeanServer().invoke(
                new ObjectName("com.sun.management:type=DiagnosticCommand"), "gcClassHistogram",
                new Object[] {new String[0]}, new String[] {String[].class.getName()});
    }

    /** Bytes of live objects of classes in io.asyncctx (including their lambdas). */
    private static long libraryBytes() throws Exception {
        long sum = 0;
        for (String line : histogram().split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 4 && f[3].startsWith("io.asyncctx.") && !f[3].startsWith("io.asyncctx.bench.")) {
                sum += Long.parseLong(f[2]);
            }
        }
        return sum;
    }

    private static long eventFds() {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().contains("eventfd");
                } catch (IOException e) {
                    return false;
                }
            }).count();
        } catch (IOException e) {
            return -1;
        }
    }
}
