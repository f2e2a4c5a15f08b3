package io.asyncctx.bench.jmh;

import io.asyncctx.AsyncCallback;
import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncJobPool;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.SignatureScheme;
import io.asyncctx.engine.SoftwareEngine;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.TearDown;

import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import javax.crypto.Cipher;

/**
 * The private-key operation per key type and provider, three ways:
 *
 * <ul>
 *   <li>{@link #perform}: {@link JcaKeySigner#perform} as the library offers it (a new, initialised {@code Signature}
 *       or {@code Cipher} per call). ACCP: {@link JcaKeySigner#withJdkFallback} with
 *       {@link CryptoProviders#accp()}; JDK: the plain constructor with {@code CryptoProviders.select(JDK)}.</li>
 *   <li>{@link #reused}: one initialised JCA object reused for every call, as the software engine's workers do
 *       (they keep a thread-confined signer); same provider and key as {@link #perform}.</li>
 *   <li>{@link #engineRoundTrip}: the whole offload through a {@link SoftwareEngine} with one worker: a job submits the
 *       operation on the benchmark thread (its owner), the worker signs and calls the ctx's callback, which unparks
 *       the benchmark thread (parked, as an idle event loop sleeps in its poll), and that thread resumes the job. Minus {@link #reused}, this is the hand-off cost (queue, worker
 *       wake-up, callback).</li>
 * </ul>
 *
 * <p>The input is 130 bytes, the size of a TLS 1.3 CertificateVerify content with SHA-256; decrypt takes 256 bytes
 * below the modulus (raw RSA, as TLS 1.2 static-RSA key exchange). Ed25519 with ACCP falls back to the JDK where ACCP
 * cannot do it; the set-up prints which provider signs.
 *
 * <p>Threading: one benchmark thread; the engine's worker signs and calls the callback on its own thread.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class SignatureBenchmark extends AbstractBenchmark {

    /** Key type and operation. */
    public enum KeyType {
        RSA_2048_PKCS1("RSA", 2048, SignatureScheme.RSA_PKCS1_SHA256),
        RSA_2048_PSS("RSA", 2048, SignatureScheme.RSA_PSS_RSAE_SHA256),
        RSA_2048_DECRYPT("RSA", 2048, null),
        ECDSA_P256("secp256r1", 0, SignatureScheme.ECDSA_SECP256R1_SHA256),
        ECDSA_P384("secp384r1", 0, SignatureScheme.ECDSA_SECP384R1_SHA384),
        ED25519("Ed25519", 0, SignatureScheme.ED25519);

        final String algorithm;
        final int bits;
        final SignatureScheme scheme;

        KeyType(String algorithm, int bits, SignatureScheme scheme) {
            this.algorithm = algorithm;
            this.bits = bits;
            this.scheme = scheme;
        }

        KeyPair generate() throws GeneralSecurityException {
            if (algorithm.startsWith("secp")) {
                KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
                g.initialize(new ECGenParameterSpec(algorithm));
                return g.generateKeyPair();
            }
            KeyPairGenerator g = KeyPairGenerator.getInstance(algorithm);
            if (bits > 0) {
                g.initialize(bits);
            }
            return g.generateKeyPair();
        }
    }

    /** Which provider signs. */
    public enum ProviderChoice {
        /** Amazon Corretto Crypto Provider (AWS-LC), with the JDK for what it cannot do. */
        ACCP,
        /** The JDK's providers. */
        JDK
    }

    @Param({"RSA_2048_PKCS1", "RSA_2048_PSS", "RSA_2048_DECRYPT", "ECDSA_P256", "ECDSA_P384", "ED25519"})
    public KeyType key;

    @Param({"ACCP", "JDK"})
    public ProviderChoice provider;

    private JcaKeySigner signer;
    private KeyOperation operation;
    private Signature signature;
    private Cipher cipher;
    private SoftwareEngine engine;
    private AsyncWaitCtx ctx;
    private EngineSession session;
    private AsyncJobPool pool;
    private volatile boolean signalled;
    private volatile Thread owner;

    @Setup(Level.Trial)
    public void setUp() throws GeneralSecurityException {
        KeyPair pair = key.generate();
        SecureRandom random = new SecureRandom();
        if (key.scheme == null) {
            byte[] input = new byte[256];
            random.nextBytes(input);
            input[0] = 0; // below any 2048-bit modulus
            operation = KeyOperation.decrypt(input);
        } else {
            byte[] input = new byte[130];
            random.nextBytes(input);
            operation = KeyOperation.sign(key.scheme, input);
        }
        CryptoProviders.Choice choice = provider == ProviderChoice.ACCP ? CryptoProviders.Choice.ACCP
                : CryptoProviders.Choice.JDK;
        Provider selected = CryptoProviders.select(choice);
        signer = provider == ProviderChoice.ACCP
                ? JcaKeySigner.withJdkFallback(pair.getPrivate(), pair.getPublic(), selected)
                : new JcaKeySigner(pair.getPrivate(), pair.getPublic(), selected);
        signer.perform(operation); // makes the fallback choice
        Provider used = key.scheme == null ? signer.decryptProvider() : signer.providerFor(key.scheme);
        PrivateKey usedKey = translate(pair.getPrivate(), used);
        if (key.scheme == null) {
            cipher = used == null ? Cipher.getInstance("RSA/ECB/NoPadding")
                    : Cipher.getInstance("RSA/ECB/NoPadding", used);
            cipher.init(Cipher.DECRYPT_MODE, usedKey);
        } else {
            signature = used == null ? Signature.getInstance(key.scheme.jcaAlgorithm())
                    : Signature.getInstance(key.scheme.jcaAlgorithm(), used);
            if (key.scheme.isPss()) {
                signature.setParameter(key.scheme.parameters());
            }
            signature.initSign(usedKey);
        }
        System.out.println("# " + key + " with " + provider + ": signs with "
                + (used == null ? "the JDK" : used.getName()) + " (" + (signature != null ? signature.getProvider()
                : cipher.getProvider()).getName() + ")");

        engine = SoftwareEngine.builder().keyPair(pair).workers(1).provider(choice).name("bench").build();
        ctx = new AsyncWaitCtx();
        AsyncCallback callback = arg -> {
            signalled = true;
            LockSupport.unpark(owner);
            return 1;
        };
        ctx.setCallback(callback, null);
        session = engine.newSession(ctx, Runnable::run);
        pool = new AsyncJobPool(16, Runnable::run);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        session.close();
        engine.close();
        ctx.close();
    }

    @Benchmark
    public byte[] perform() throws GeneralSecurityException {
        return signer.perform(operation);
    }

    @Benchmark
    public byte[] reused() throws GeneralSecurityException {
        if (cipher != null) {
            return cipher.doFinal(operation.input());
        }
        signature.update(operation.input());
        return signature.sign();
    }

    @Benchmark
    public byte[] engineRoundTrip() {
        signalled = false;
        owner = Thread.currentThread();
        AsyncJob<byte[]> job = new AsyncJob<>(pool, ctx, j -> session.submit(j, operation));
        AsyncStartResult r = job.start();
        if (r == AsyncStartResult.PAUSE) {
            long start = System.nanoTime();
            while (!signalled) {
                checkStall(start, "the engine's callback", engine);
                LockSupport.parkNanos(this, STALL_NANOS);
            }
            r = job.resume();
        }
        if (r != AsyncStartResult.FINISH) {
            throw new IllegalStateException("the job ended with " + r + ": " + job.failure(), job.failure());
        }
        return job.result();
    }

    /** The key in {@code provider}'s own type when it has a key factory for it (as the library's signer does). */
    private static PrivateKey translate(PrivateKey key, Provider provider) {
        if (provider == null) {
            return key;
        }
        try {
            Key translated = KeyFactory.getInstance(key.getAlgorithm(), provider).translateKey(key);
            return translated instanceof PrivateKey pk ? pk : key;
        } catch (GeneralSecurityException | RuntimeException e) {
            return key;
        }
    }
}
