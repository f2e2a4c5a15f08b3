package io.asyncctx.netty;

import io.asyncctx.engine.AbstractAsyncEngine;
import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.engine.PendingOperation;
import io.asyncctx.engine.SoftwareEngine;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.spec.ECGenParameterSpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLException;

/**
 * Certificates, engines and TLS peers for the integration tests.
 *
 * <p>Threading: static helpers; the engines are thread-safe.
 */
final class TlsFixtures {

    enum KeyKind {
        RSA, EC_P256, EC_P384, EC_P521, ED25519
    }

    private TlsFixtures() {
    }

    static X509Bundle certificate(KeyKind kind) throws Exception {
        CertificateBuilder b = new CertificateBuilder().subject("CN=localhost").addSanDnsName("localhost")
                .addSanIpAddress("127.0.0.1").setIsCertificateAuthority(true);
        switch (kind) {
            case RSA -> b.algorithm(CertificateBuilder.Algorithm.rsa2048);
            case EC_P256 -> b.algorithm(CertificateBuilder.Algorithm.ecp256);
            case EC_P384 -> b.algorithm(CertificateBuilder.Algorithm.ecp384);
            case ED25519 -> b.algorithm(CertificateBuilder.Algorithm.ed25519);
            case EC_P521 -> {
                KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
                g.initialize(new ECGenParameterSpec("secp521r1"));
                b.keyPair(g.generateKeyPair());
            }
            default -> throw new IllegalArgumentException(kind.toString());
        }
        return b.buildSelfSigned();
    }

    /** A stock Netty TLS 1.3 client (BoringSSL) that trusts any server certificate: the tests' peer. Release it. */
    static SslContext insecureTls13Client() throws SSLException {
        return SslContextBuilder.forClient().sslProvider(SslProvider.OPENSSL)
                .trustManager(InsecureTrustManagerFactory.INSTANCE).protocols("TLSv1.3").build();
    }

    static SoftwareEngine softwareEngine(X509Bundle cert) {
        return SoftwareEngine.builder().keyPair(cert.getKeyPair()).workers(2)
                .provider(CryptoProviders.Choice.AUTO).build();
    }

    /** Writes the certificate as PEM for command-line peers. */
    static Path writePem(X509Bundle cert, Path dir) throws Exception {
        Path p = dir.resolve("cert-" + System.nanoTime() + ".pem");
        String pem = "-----BEGIN CERTIFICATE-----\n"
                + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII))
                .encodeToString(cert.getCertificate().getEncoded())
                + "\n-----END CERTIFICATE-----\n";
        Files.writeString(p, pem);
        return p;
    }

    /** Result of a command-line peer. */
    record ProcessResult(int exitCode, String output) {
    }

    /** Runs a command with stdin closed (or fed {@code input}), bounded in time; stdout and stderr merged. */
    static ProcessResult run(List<String> command, String input, long timeoutSeconds) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        Process p = pb.start();
        ExecutorService reader = Executors.newSingleThreadExecutor();
        try {
            java.util.concurrent.Future<String> out = reader.submit(() -> readAll(p.getInputStream()));
            if (input != null) {
                p.getOutputStream().write(input.getBytes(StandardCharsets.US_ASCII));
            }
            p.getOutputStream().close();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("timed out after " + timeoutSeconds + " s: " + command);
            }
            return new ProcessResult(p.exitValue(), out.get(5, TimeUnit.SECONDS));
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

    /** openssl s_client against 127.0.0.1:port with extra arguments, sending one HTTP request. */
    static ProcessResult sClient(int port, String... extra) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + port,
                "-servername", "localhost", "-no_ticket", "-ign_eof"));
        cmd.addAll(List.of(extra));
        return run(cmd, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 30);
    }

    /** curl -k https://127.0.0.1:port/ . */
    static ProcessResult curl(int port, String... extra) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("curl", "-sS", "-k", "--max-time", "20"));
        cmd.addAll(List.of(extra));
        cmd.add("https://127.0.0.1:" + port + "/");
        return run(cmd, null, 30);
    }

    /**
     * An engine for failure tests: for each operation it follows a script entry (fail, EAGAIN n times, or succeed),
     * signing for real with a {@link KeySigner} on its own thread.
     */
    static final class TlsScriptedEngine extends AbstractAsyncEngine {
        private final KeySigner signer;
        private final ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "tls-scripted-engine");
            t.setDaemon(true);
            return t;
        });
        private final List<Integer> script;
        final AtomicInteger offers = new AtomicInteger();
        final AtomicInteger eagains = new AtomicInteger();
        final AtomicInteger completed = new AtomicInteger();
        final AtomicInteger failed = new AtomicInteger();
        private int opIndex;
        private int eagainsLeft = -1;

        /**
         * @param script per operation: -1 = fail, 0 = succeed, n > 0 = answer EAGAIN n times then succeed; the last
         *     entry repeats
         */
        TlsScriptedEngine(KeyPair keyPair, List<Integer> script) {
            super("scripted", FdMode.PER_CTX);
            this.signer = new JcaKeySigner(keyPair.getPrivate(), keyPair.getPublic(), null);
            this.script = List.copyOf(script);
        }

        @Override
        public PublicKey publicKey() {
            return signer.publicKey();
        }

        @Override
        protected synchronized boolean offer(PendingOperation op) {
            offers.incrementAndGet();
            int entry = script.get(Math.min(opIndex, script.size() - 1));
            if (entry > 0) {
                if (eagainsLeft < 0) {
                    eagainsLeft = entry;
                }
                if (eagainsLeft > 0) {
                    eagainsLeft--;
                    eagains.incrementAndGet();
                    return false;
                }
            }
            eagainsLeft = -1;
            opIndex++;
            worker.execute(() -> {
                if (entry < 0) {
                    failed.incrementAndGet();
                    op.fail(new IllegalStateException("scripted engine failure"));
                    return;
                }
                try {
                    byte[] result = signer.perform(op.operation());
                    completed.incrementAndGet();
                    op.complete(result);
                } catch (Exception e) {
                    failed.incrementAndGet();
                    op.fail(e);
                }
            });
            return true;
        }

        @Override
        public void close() {
            super.close();
            worker.shutdownNow();
        }
    }
}
