package io.asyncctx.bench.load;

import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.OffloadConfig;
import io.asyncctx.quic.QuicAsyncSslContext;
import io.asyncctx.quic.QuicAsyncSslContextBuilder;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollDatagramChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.handler.codec.quic.InsecureQuicTokenHandler;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicClientCodecBuilder;
import io.netty.handler.codec.quic.QuicServerCodecBuilder;
import io.netty.handler.codec.quic.QuicSslContext;
import io.netty.handler.codec.quic.QuicSslContextBuilder;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.concurrent.DefaultThreadFactory;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.lang.management.ThreadMXBean;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * QUIC handshakes per second and server CPU per handshake: offload (a {@link QuicAsyncSslContext}, one software-engine
 * worker signing with AWS-LC) against QUIC's own inline signing (the key inside BoringSSL, on the event loop). One
 * process: the server on one epoll loop, Netty's QUIC client on another, a fixed number of handshakes in flight,
 * full handshakes only (a fresh client context per connection, so no session resumption). Server CPU = process CPU
 * minus the client loop thread's. Variants alternate round by round; the medians are printed.
 *
 * <p>Usage: {@code java -cp benchmarks.jar io.asyncctx.bench.load.QuicHandshakeBench [rsa|ec] [rounds] [seconds]}.
 *
 * <p>Threading: main thread only; the loops run the handshakes.
 */
@Command(name = "QuicHandshakeBench", mixinStandardHelpOptions = true,
        description = "QUIC handshakes/s and server CPU per handshake: offload against QUIC's inline signing.")
public final class QuicHandshakeBench implements Callable<Integer> {

    @Parameters(index = "0", arity = "0..1", description = "Key: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
    HarnessOptions.KeyType key = HarnessOptions.KeyType.rsa;

    @Parameters(index = "1", arity = "0..1", converter = HarnessOptions.OneOrMore.class,
            description = "Measured rounds (default: ${DEFAULT-VALUE}).")
    int rounds = 7;

    @Parameters(index = "2", arity = "0..1", converter = HarnessOptions.OneOrMore.class,
            description = "Seconds per variant and round (default: ${DEFAULT-VALUE}).")
    int seconds = 5;

    /** Does nothing: the benchmark measures handshakes only. */
    @ChannelHandler.Sharable
    private static final class Idle extends ChannelInboundHandlerAdapter {
    }

    private static final Idle IDLE = new Idle();

    /** Runs the benchmark; exits with its code. */
    public static void main(String[] args) {
        System.exit(HarnessOptions.commandLine(new QuicHandshakeBench()).execute(args));
    }

    @Override
    public Integer call() throws Exception {
        X509Bundle cert = new CertificateBuilder().subject("CN=localhost").addSanDnsName("localhost")
                .setIsCertificateAuthority(true).algorithm(key.algorithm).buildSelfSigned();
        List<double[]> offload = new ArrayList<>();
        List<double[]> inline = new ArrayList<>();
        round(cert, true, 2);
        round(cert, false, 2);
        for (int r = 0; r < rounds; r++) {
            offload.add(round(cert, true, seconds));
            inline.add(round(cert, false, seconds));
            System.out.printf(Locale.ROOT, "round %d: offload %.0f/s %.0f us, inline %.0f/s %.0f us%n", r + 1,
                    offload.get(r)[0], offload.get(r)[1], inline.get(r)[0], inline.get(r)[1]);
        }
        System.out.printf(Locale.ROOT, "%s medians over %d rounds of %d s: offload %.0f handshakes/s, %.0f us server "
                + "CPU/handshake; inline %.0f handshakes/s, %.0f us server CPU/handshake%n", key, rounds, seconds,
                median(offload, 0), median(offload, 1), median(inline, 0), median(inline, 1));
        return 0;
    }

    private static double median(List<double[]> v, int i) {
        double[] a = v.stream().mapToDouble(x -> x[i]).sorted().toArray();
        return a[a.length / 2];
    }

    /** One round: returns {handshakes per second, server CPU microseconds per handshake}. */
    private static double[] round(X509Bundle cert, boolean offload, int seconds) throws Exception {
        MultiThreadIoEventLoopGroup serverGroup = new MultiThreadIoEventLoopGroup(1,
                new DefaultThreadFactory("quic-server"), EpollIoHandler.newFactory());
        MultiThreadIoEventLoopGroup clientGroup = new MultiThreadIoEventLoopGroup(1,
                new DefaultThreadFactory("quic-client"), EpollIoHandler.newFactory());
        SoftwareEngine engine = SoftwareEngine.builder().keyPair(cert.getKeyPair()).workers(1)
                .provider(CryptoProviders.Choice.AUTO).build();
        try {
            QuicServerCodecBuilder sb = new QuicServerCodecBuilder()
                    .maxIdleTimeout(5, TimeUnit.SECONDS).initialMaxData(1 << 16).initialMaxStreamsBidirectional(4)
                    .tokenHandler(InsecureQuicTokenHandler.INSTANCE).handler(IDLE);
            if (offload) {
                QuicAsyncSslContextBuilder.forServer(engine, cert.getCertificatePath()).applicationProtocols("bench")
                        .offloadConfig(OffloadConfig.builder().notify(OffloadConfig.Notify.FD).build()).build()
                        .configure(sb);
            } else {
                sb.sslContext(QuicSslContextBuilder.forServer(cert.getKeyPair().getPrivate(), null,
                        cert.getCertificatePath()).applicationProtocols("bench").build());
            }
            Channel server = new Bootstrap().group(serverGroup).channel(EpollDatagramChannel.class)
                    .option(ChannelOption.SO_RCVBUF, 4 << 20).handler(sb.build())
                    .bind(new InetSocketAddress("127.0.0.1", 0)).sync().channel();
            InetSocketAddress addr = (InetSocketAddress) server.localAddress();
            ChannelHandler clientCodec = new QuicClientCodecBuilder().maxIdleTimeout(5, TimeUnit.SECONDS)
                    .initialMaxData(1 << 16).sslEngineProvider(q -> clientContext(cert).newEngine(q.alloc(),
                            "localhost", addr.getPort())).build();
            Channel client = new Bootstrap().group(clientGroup).channel(EpollDatagramChannel.class)
                    .option(ChannelOption.SO_RCVBUF, 4 << 20).handler(clientCodec)
                    .bind(new InetSocketAddress("127.0.0.1", 0)).sync().channel();
            Semaphore inFlight = new Semaphore(32);
            AtomicLong done = new AtomicLong();
            AtomicLong failed = new AtomicLong();
            long cpu0 = processCpu() - clientCpu();
            long t0 = System.nanoTime();
            long end = t0 + TimeUnit.SECONDS.toNanos(seconds);
            while (System.nanoTime() < end) {
                if (!inFlight.tryAcquire(100, TimeUnit.MILLISECONDS)) {
                    continue;
                }
                QuicChannel.newBootstrap(client).handler(IDLE).remoteAddress(addr)
                        .localAddress(client.localAddress()).connect().addListener(f -> {
                            if (f.isSuccess()) {
                                done.incrementAndGet();
                                ((QuicChannel) f.getNow()).close();
                            } else {
                                if (failed.incrementAndGet() == 1) {
                                    System.out.println("  first failure: " + f.cause());
                                }
                            }
                            inFlight.release();
                        });
            }
            long elapsed = System.nanoTime() - t0;
            long cpu = processCpu() - clientCpu() - cpu0;
            long n = done.get();
            inFlight.acquire(32);
            client.close().sync();
            server.close().sync();
            if (failed.get() > 0) {
                System.out.println("  (" + failed.get() + " handshakes failed)");
            }
            return new double[] {n * 1e9 / elapsed, n == 0 ? 0 : cpu / 1e3 / n};
        } finally {
            clientGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
            serverGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
            engine.close();
        }
    }

    private static QuicSslContext clientContext(X509Bundle cert) {
        return QuicSslContextBuilder.forClient().trustManager(cert.getRootCertificate()).applicationProtocols("bench")
                .build();
    }

    private static long processCpu() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    /** CPU of the client loop threads (to subtract: the server's cost is what is compared). */
    private static long clientCpu() {
        ThreadMXBean t = ManagementFactory.getThreadMXBean();
        long sum = 0;
        for (ThreadInfo i : t.getThreadInfo(t.getAllThreadIds())) {
            if (i != null && i.getThreadName().startsWith("quic-client")) {
                long c = t.getThreadCpuTime(i.getThreadId());
                sum += Math.max(0, c);
            }
        }
        return sum;
    }
}
