package io.asyncctx.engine;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Threading: thread-safe and shared by all connections. Sessions are used on their event loops; workers are
 * daemon threads named {@code asyncctx-software-N}. {@link #close()} is called once the servers using the engine have
 * stopped, from a thread that is not an event loop (it waits briefly for the workers to end).
 *
 * <p>The default engine: a bounded pool of worker threads that sign with an in-memory private key, through Amazon
 * Corretto Crypto Provider (AWS-LC) when it loads, else the JDK's providers.
 *
 * <p>An operation is queued on the submitting event loop without blocking; when the queue is full the job's status
 * becomes {@link io.asyncctx.AsyncStatus#EAGAIN} and {@link #operationsRejected()} counts it. A worker signs and then
 * signals the job's ctx (wait fd or callback, see {@link AbstractAsyncEngine}). An operation whose job was abandoned
 * before a worker reached it is skipped. The queue and workers are {@link EngineWorkers}, shared with the PKCS#11
 * engine.
 */
public final class SoftwareEngine extends AbstractAsyncEngine {

    private static final AtomicInteger ENGINE_IDS = new AtomicInteger();
    private static final long JOIN_MILLIS = 2_000;

    private final KeySigner signer;
    private final KeySigner inlineSigner;
    private final Provider provider;
    private final EngineWorkers workers;
    private final Executor taskExecutor = this::executeTask;

    SoftwareEngine(String name, FdMode fdMode, KeySigner signer, Provider provider, int workerCount,
                   int queueCapacity) {
        super(name, fdMode);
        this.signer = Objects.requireNonNull(signer, "signer");
        this.inlineSigner = perThread(signer);
        this.provider = provider;
        this.workers = new EngineWorkers(name, "asyncctx-software-" + ENGINE_IDS.incrementAndGet() + "-", workerCount,
                queueCapacity, this::newWorker);
        workers.start();
    }

    /** A builder; give it a key with {@link Builder#key}, {@link Builder#keyPair} or {@link Builder#pem}. */
    public static Builder builder() {
        return new Builder();
    }

    @Override
    public PublicKey publicKey() {
        return signer.publicKey();
    }

    /** The provider that signs, or null for the JDK's preference order. */
    public Provider provider() {
        return provider;
    }

    /** The number of worker threads. */
    public int workers() {
        return workers.workerCount();
    }

    /** The most operations (and tasks) queued at once. */
    public int queueCapacity() {
        return workers.capacity();
    }

    /** Operations and tasks queued now, not yet taken by a worker (abandoned ones until a worker skips them). */
    public int queued() {
        return workers.queued();
    }

    /** Operations that completed with a result. */
    public long operationsCompleted() {
        return workers.completed();
    }

    /** Operations that failed (the key refused the operation, a provider error, or the engine closed first). */
    public long operationsFailed() {
        return workers.failed();
    }

    /** Operations refused because the queue was full (the job saw EAGAIN). */
    public long operationsRejected() {
        return workers.rejected();
    }

    /**
     * Parked workers woken to take an operation or task: at most one per submit, none when a worker was awake. Under a
     * trickle of cheap operations it is about one per operation; under a burst, far fewer.
     */
    public long workerWakeups() {
        return workers.wakeups();
    }

    /** RSA signatures that failed the check of {@link Builder#verifyAfterSign}; 0 when it is off. */
    public long verificationFailures() {
        return signer instanceof VerifyingKeySigner v ? v.verificationFailures() : 0;
    }

    /**
     * Operations skipped because their job was abandoned before a worker reached them (cancellation is lazy: the
     * worker that takes an abandoned operation skips it).
     */
    public long operationsCancelled() {
        return workers.cancelled();
    }

    /**
     * An executor on the same bounded workers, for the delegated tasks of the JDK's TLS engine. Throws
     * {@link RejectedExecutionException} when the queue is full or the engine is closed; never blocks.
     */
    @Override
    public Executor taskExecutor() {
        return taskExecutor;
    }

    /** A thread-safe signer whose calls use a thread-confined copy per calling thread. */
    private static KeySigner perThread(KeySigner signer) {
        if (!(signer instanceof JcaKeySigner jca)) {
            return signer;
        }
        ThreadLocal<KeySigner> local = ThreadLocal.withInitial(jca::threadConfined);
        return new KeySigner() {
            @Override
            public java.security.PublicKey publicKey() {
                return jca.publicKey();
            }

            @Override
            public byte[] perform(KeyOperation operation) throws java.security.GeneralSecurityException {
                return local.get().perform(operation);
            }
        };
    }

    /**
     * The engine's signer, for inline use on event loops under a measured policy: each calling thread keeps its own
     * initialised JCA objects (like the workers do).
     */
    @Override
    public KeySigner inlineSigner() {
        return inlineSigner;
    }

    @Override
    protected boolean offer(PendingOperation operation) {
        return workers.offer(operation);
    }

    /**
     * Stops the workers (interrupts them and waits up to two seconds in total), then fails every queued operation and
     * drops queued tasks. Idempotent (a CAS). Blocks for up to two seconds: call it from a thread that may block,
     * never from an event loop (nor from one of the engine's workers).
     */
    @Override
    public void close() {
        if (!markClosed()) {
            return;
        }
        workers.close(JOIN_MILLIS);
    }

    private void executeTask(Runnable task) {
        Objects.requireNonNull(task, "task");
        if (isClosed()) {
            throw new RejectedExecutionException("engine '" + name() + "' is closed");
        }
        if (!workers.execute(task)) {
            throw new RejectedExecutionException("engine '" + name() + "' queue is full (" + workers.capacity()
                    + "); raise queueCapacity or workers");
        }
    }

    /** A worker's signer: thread-confined JCA objects. */
    private EngineWorkers.Worker newWorker() {
        KeySigner local = signer instanceof JcaKeySigner jca ? jca.threadConfined()
                : signer instanceof VerifyingKeySigner v ? v.threadConfined() : signer;
        return local::perform;
    }

    @Override
    public String toString() {
        return "SoftwareEngine[" + name() + ", workers=" + workers.workerCount() + ", queued=" + workers.queued()
                + '/' + workers.capacity() + ", provider=" + (provider == null ? "JDK" : provider.getName()) + ']';
    }

    /**
     * Threading: not thread-safe; use it on one thread, then share the engine it builds.
     *
     * <p>Configures a {@link SoftwareEngine}.
     */
    public static final class Builder {
        private PrivateKey privateKey;
        private PublicKey publicKey;
        private int workers = Math.max(1, Runtime.getRuntime().availableProcessors());
        private int queueCapacity = 4096;
        private CryptoProviders.Choice choice = CryptoProviders.Choice.AUTO;
        private FdMode fdMode = FdMode.SHARED_PER_LOOP;
        private String name = "software";
        private boolean verifyAfterSign;

        private Builder() {
        }

        /** The private key and its public key (RSA, EC on P-256/P-384/P-521, or Ed25519). */
        public Builder key(PrivateKey privateKey, PublicKey publicKey) {
            this.privateKey = Objects.requireNonNull(privateKey, "privateKey");
            this.publicKey = Objects.requireNonNull(publicKey, "publicKey");
            return this;
        }

        /** The key pair. */
        public Builder keyPair(KeyPair keyPair) {
            Objects.requireNonNull(keyPair, "keyPair");
            return key(keyPair.getPrivate(), keyPair.getPublic());
        }

        /**
         * Reads the private key (unencrypted PEM: PKCS#8, traditional RSA or EC, or Ed25519) and takes the public key
         * from the first certificate of {@code certPem}.
         *
         * @throws UncheckedIOException when a file cannot be read
         * @throws IllegalArgumentException when a file does not hold what is expected (the message names the file)
         */
        public Builder pem(Path keyPem, Path certPem) {
            Objects.requireNonNull(keyPem, "keyPem");
            Objects.requireNonNull(certPem, "certPem");
            try {
                List<X509Certificate> chain = PemKeys.readCertificates(certPem);
                PrivateKey key = PemKeys.readPrivateKey(keyPem);
                return key(key, chain.get(0).getPublicKey());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        /** Worker threads, at least 1; default the number of cores. */
        public Builder workers(int workers) {
            if (workers < 1) {
                throw new IllegalArgumentException("workers: " + workers + " (expected at least 1)");
            }
            this.workers = workers;
            return this;
        }

        /** The most operations queued at once, at least 1; default 4096. A full queue answers EAGAIN. */
        public Builder queueCapacity(int queueCapacity) {
            if (queueCapacity < 1) {
                throw new IllegalArgumentException("queueCapacity: " + queueCapacity + " (expected at least 1)");
            }
            this.queueCapacity = queueCapacity;
            return this;
        }

        /** Which JCA provider signs; default {@link CryptoProviders.Choice#AUTO}. */
        public Builder provider(CryptoProviders.Choice choice) {
            this.choice = Objects.requireNonNull(choice, "choice");
            return this;
        }

        /** How the fd path signals; default {@link FdMode#SHARED_PER_LOOP}. */
        public Builder fdMode(FdMode fdMode) {
            this.fdMode = Objects.requireNonNull(fdMode, "fdMode");
            return this;
        }

        /**
         * Checks every RSA signature with the public key before it is returned ({@link VerifyingKeySigner}); one that
         * does not verify fails its operation and is counted by {@link SoftwareEngine#verificationFailures()}. Default
         * off.
         */
        public Builder verifyAfterSign(boolean verifyAfterSign) {
            this.verifyAfterSign = verifyAfterSign;
            return this;
        }

        /** The engine's name for logs and metrics; default "software". */
        public Builder name(String name) {
            this.name = Objects.requireNonNull(name, "name");
            return this;
        }

        /**
         * Builds and starts the engine. Signs a test message once and verifies it with the public key, so that a key
         * that does not match its certificate fails here rather than in every handshake.
         *
         * @throws IllegalStateException when no key was given, the key does not match the public key, or ACCP was
         *     required and cannot be loaded
         * @throws IllegalArgumentException when the key type is not supported
         */
        public SoftwareEngine build() {
            if (privateKey == null) {
                throw new IllegalStateException("no key: call key(privateKey, publicKey), keyPair(keyPair) or "
                        + "pem(keyPem, certPem) before build()");
            }
            Provider provider = CryptoProviders.select(choice);
            JcaKeySigner signer = JcaKeySigner.withJdkFallback(privateKey, publicKey, provider);
            checkKeyPair(signer);
            KeySigner used = verifyAfterSign ? new VerifyingKeySigner(signer) : signer;
            return new SoftwareEngine(name, fdMode, used, provider, workers, queueCapacity);
        }

        private void checkKeyPair(JcaKeySigner signer) {
            KeyMatch.probeScheme(privateKey.getAlgorithm()); // refuses an unsupported key type with what to use
            if (!publicKey.getAlgorithm().equals(privateKey.getAlgorithm())) {
                throw new IllegalStateException("the public key is " + publicKey.getAlgorithm()
                        + " but the private key is " + privateKey.getAlgorithm() + "; give the matching pair");
            }
            boolean ok;
            try {
                ok = KeyMatch.matches(signer, publicKey);
            } catch (GeneralSecurityException | RuntimeException e) {
                throw new IllegalStateException("cannot sign with the " + privateKey.getAlgorithm() + " key: "
                        + e.getMessage(), e);
            }
            if (!ok) {
                throw new IllegalStateException("the private key does not match the public key (or certificate); "
                        + "give the key that belongs to the certificate");
            }
        }
    }
}
