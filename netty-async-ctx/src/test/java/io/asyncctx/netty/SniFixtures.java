package io.asyncctx.netty;

import io.asyncctx.engine.AbstractAsyncEngine;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.engine.PendingOperation;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.PublicKey;
import java.security.cert.X509Certificate;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * Certificates with names and serials, a gated engine, a Netty SNI client and process counters for the SNI, rotation
 * and ticket tests.
 *
 * <p>Threading: static helpers for the test thread; the engine is thread-safe.
 */
final class SniFixtures {

    private SniFixtures() {
    }

    /** A self-signed certificate for {@code cn} (also its DNS SAN unless a wildcard) with {@code serial}. */
    static X509Bundle cert(String cn, CertificateBuilder.Algorithm algorithm, long serial) throws Exception {
        CertificateBuilder b = new CertificateBuilder().subject("CN=" + cn).algorithm(algorithm)
                .serial(BigInteger.valueOf(serial)).setIsCertificateAuthority(true);
        if (!cn.contains("*")) {
            b.addSanDnsName(cn); // pkitesting cannot encode a wildcard SAN; the CN names the test's certificate
        }
        return b.buildSelfSigned();
    }

    /** A server context for {@code cert} with a software engine of its own key. */
    static AsyncSslContext softwareContext(X509Bundle cert) throws Exception {
        return AsyncSslContextBuilder.forServer(TlsFixtures.softwareEngine(cert), cert.getCertificate()).build();
    }

    /** Waits (polling, bounded) until {@code condition} holds. */
    static void await(String what, BooleanSupplier condition, long timeoutMillis) throws InterruptedException {
        io.asyncctx.testkit.Await.until(what, java.time.Duration.ofMillis(timeoutMillis), condition);
    }

    /** Live threads whose name starts with {@code prefix}. */
    static long threads(String prefix) {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.isAlive() && t.getName().startsWith(prefix))
                .count();
    }

    /** Open eventfds of this process. */
    static long eventFds() throws IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().contains("eventfd");
                } catch (IOException e) {
                    return false; // closed meanwhile
                }
            }).count();
        }
    }

    /**
     * One TLS handshake from a Netty client with SNI {@code serverName}; returns the server certificate's serial, or
     * throws the handshake's failure.
     */
    static BigInteger handshake(EventLoopGroup group, SslContext client, int port, String serverName)
            throws Exception {
        SslHandler[] ssl = new SslHandler[1];
        Channel ch = new Bootstrap().group(group).channel(EpollSocketChannel.class)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel c) {
                        ssl[0] = client.newHandler(c.alloc(), serverName, port);
                        ssl[0].setHandshakeTimeoutMillis(60_000);
                        c.pipeline().addLast(ssl[0]);
                    }
                }).connect("127.0.0.1", port).sync().channel();
        try {
            if (!ssl[0].handshakeFuture().await(60, TimeUnit.SECONDS)) {
                throw new AssertionError("handshake did not end within 60 s");
            }
            if (!ssl[0].handshakeFuture().isSuccess()) {
                throw new Exception("handshake failed", ssl[0].handshakeFuture().cause());
            }
            return ((X509Certificate) ssl[0].engine().getSession().getPeerCertificates()[0]).getSerialNumber();
        } finally {
            ch.close().sync();
        }
    }

    /** The serial of the certificate that openssl s_client gets for {@code serverName}, in hex as openssl prints it. */
    static String sClientSerial(int port, String serverName, String... extra) throws Exception {
        String cmd = "openssl s_client -connect 127.0.0.1:" + port + " -servername " + serverName + " -no_ticket "
                + String.join(" ", extra) + " </dev/null 2>/dev/null | openssl x509 -noout -serial";
        TlsFixtures.ProcessResult r = TlsFixtures.run(java.util.List.of("sh", "-c", cmd), null, 30);
        if (r.exitCode() != 0 || !r.output().startsWith("serial=")) {
            throw new AssertionError("s_client for " + serverName + " failed: " + r.output());
        }
        return r.output().trim().substring("serial=".length());
    }

    static String hex(long serial) {
        String h = Long.toHexString(serial).toUpperCase(java.util.Locale.ROOT);
        return h.length() % 2 == 1 ? "0" + h : h;
    }

    /**
     * An engine that keeps every operation until {@link #release()}, then signs it for real on its own thread: holds a
     * handshake paused at its key operation for as long as a test needs.
     */
    static final class GatedEngine extends AbstractAsyncEngine {
        private final KeySigner signer;
        private final ConcurrentLinkedQueue<PendingOperation> held = new ConcurrentLinkedQueue<>();
        private final ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "gated-engine");
            t.setDaemon(true);
            return t;
        });

        GatedEngine(KeyPair keyPair) {
            super("gated", FdMode.PER_CTX);
            this.signer = new JcaKeySigner(keyPair.getPrivate(), keyPair.getPublic(), null);
        }

        int held() {
            return held.size();
        }

        void release() {
            PendingOperation op;
            while ((op = held.poll()) != null) {
                PendingOperation o = op;
                worker.execute(() -> {
                    try {
                        o.complete(signer.perform(o.operation()));
                    } catch (Exception e) {
                        o.fail(e);
                    }
                });
            }
        }

        @Override
        public PublicKey publicKey() {
            return signer.publicKey();
        }

        @Override
        protected boolean offer(PendingOperation op) {
            held.add(op);
            return true;
        }

        @Override
        public void close() {
            if (!markClosed()) {
                return;
            }
            PendingOperation op;
            while ((op = held.poll()) != null) {
                op.failQuietly(new IllegalStateException("engine 'gated' is closed"));
            }
            worker.shutdownNow();
            try {
                worker.awaitTermination(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
