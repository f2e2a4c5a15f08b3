package io.asyncctx.engine;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/**
 * The default engine: a bounded pool of worker threads that sign with an in-memory private key, through Amazon Corretto
 * Crypto Provider (AWS-LC) when it loads, else the JDK's providers.
 *
 * <p>An operation is queued on the submitting event loop without blocking; when the queue is full the job's status
 * becomes {@link io.asyncctx.AsyncStatus#EAGAIN} and {@link #operationsRejected()} counts it. A worker signs and then
 * signals the job's ctx (wait fd or callback, see {@link AbstractAsyncEngine}). An operation whose job was abandoned
 * before a worker reached it is skipped.
 *
 * <p><b>Threading.</b> Thread-safe and shared by all connections. Sessions are used on their event loops; workers are
 * daemon threads named {@code asyncctx-software-N}. {@link #close()} is called once the servers using the engine have
 * stopped, from a thread that is not an event loop (it waits briefly for the workers to end).
 */
public final class SoftwareEngine extends AbstractAsyncEngine {

    private static final System.Logger LOGGER = System.getLogger(SoftwareEngine.class.getName());
    private static final AtomicInteger THREAD_IDS = new AtomicInteger();
    private static final long JOIN_MILLIS = 2_000;

    private final KeySigner signer;
    private final KeySigner inlineSigner;
    private final Provider provider;
    private final int queueCapacity;
    private final BlockingQueue<Object> queue;
    private final List<Thread> workers;
    private final Executor taskExecutor = this::executeTask;
    private final LongAdder completed = new LongAdder();
    private final LongAdder failed = new LongAdder();
    private final LongAdder rejected = new LongAdder();
    private final LongAdder cancelled = new LongAdder();
    private volatile boolean stopping;

    SoftwareEngine(String name, FdMode fdMode, KeySigner signer, Provider provider, int workerCount,
                   int queueCapacity) {
        super(name, fdMode);
        this.signer = Objects.requireNonNull(signer, "signer");
        this.inlineSigner = perThread(signer);
        this.provider = provider;
        if (workerCount < 1) {
            throw new IllegalArgumentException("workers: " + workerCount + " (expected at least 1)");
        }
        if (queueCapacity < 1) {
            throw new IllegalArgumentException("queueCapacity: " + queueCapacity + " (expected at least 1)");
        }
        this.queueCapacity = queueCapacity;
        this.queue = new ArrayBlockingQueue<>(queueCapacity);
        List<Thread> threads = new ArrayList<>(workerCount);
        for (int i = 0; i < workerCount; i++) {
            Thread t = new Thread(this::work, "asyncctx-software-" + THREAD_IDS.incrementAndGet());
            t.setDaemon(true);
            threads.add(t);
        }
        this.workers = List.copyOf(threads);
        for (Thread t : workers) {
            t.start();
        }
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
        return workers.size();
    }

    /** The most operations (and tasks) queued at once. */
    public int queueCapacity() {
        return queueCapacity;
    }

    /** Operations and tasks queued now, not yet taken by a worker. */
    public int queued() {
        return queue.size();
    }

    /** Operations that completed with a result. */
    public long operationsCompleted() {
        return completed.sum();
    }

    /** Operations that failed (the key refused the operation, a provider error, or the engine closed first). */
    public long operationsFailed() {
        return failed.sum();
    }

    /** Operations refused because the queue was full (the job saw EAGAIN). */
    public long operationsRejected() {
        return rejected.sum();
    }

    /** RSA signatures that failed the check of {@link Builder#verifyAfterSign}; 0 when it is off. */
    public long verificationFailures() {
        return signer instanceof VerifyingKeySigner v ? v.verificationFailures() : 0;
    }

    /** Operations skipped because their job was abandoned before a worker reached them. */
    public long operationsCancelled() {
        return cancelled.sum();
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
        if (stopping) {
            failOne(operation, closedException());
            return true;
        }
        if (!queue.offer(operation)) {
            rejected.increment();
            return false;
        }
        if (stopping && queue.remove(operation)) {
            failOne(operation, closedException()); // raced with close(): close's drain may have missed it
        }
        return true;
    }

    @Override
    protected void cancel(PendingOperation operation) {
        if (queue.remove(operation)) {
            cancelled.increment();
        }
    }

    /**
     * Stops the workers (interrupts them and waits up to two seconds in total), then fails every queued operation and
     * drops queued tasks. Idempotent. Call it from a thread that is not an event loop.
     */
    @Override
    public void close() {
        if (stopping) {
            return;
        }
        stopping = true;
        super.close();
        for (Thread t : workers) {
            t.interrupt();
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(JOIN_MILLIS);
        boolean interrupted = false;
        for (Thread t : workers) {
            if (t == Thread.currentThread()) {
                continue;
            }
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            try {
                if (left > 0) {
                    t.join(left);
                }
            } catch (InterruptedException e) {
                interrupted = true;
            }
            if (t.isAlive()) {
                LOGGER.log(System.Logger.Level.DEBUG, "{0} is still busy after close(); it ends after its current "
                        + "operation", t.getName());
            }
        }
        IllegalStateException cause = closedException();
        List<Object> left = new ArrayList<>();
        queue.drainTo(left);
        for (Object item : left) {
            if (item instanceof PendingOperation op) {
                failOne(op, cause);
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private void executeTask(Runnable task) {
        Objects.requireNonNull(task, "task");
        if (stopping) {
            throw new RejectedExecutionException("engine '" + name() + "' is closed");
        }
        if (!queue.offer(task)) {
            throw new RejectedExecutionException("engine '" + name() + "' queue is full (" + queueCapacity
                    + "); raise queueCapacity or workers");
        }
    }

    private void work() {
        KeySigner local = signer instanceof JcaKeySigner jca ? jca.threadConfined()
                : signer instanceof VerifyingKeySigner v ? v.threadConfined() : signer;
        while (!stopping) {
            Object item;
            try {
                item = queue.take();
            } catch (InterruptedException e) {
                if (stopping) {
                    return;
                }
                continue;
            }
            if (item instanceof PendingOperation op) {
                perform(local, op);
            } else {
                runTask((Runnable) item);
            }
        }
    }

    private void perform(KeySigner local, PendingOperation op) {
        if (op.isCancelled()) {
            cancelled.increment();
            return;
        }
        byte[] result;
        try {
            result = local.perform(op.operation());
        } catch (GeneralSecurityException | RuntimeException | Error e) {
            failOne(op, e); // an Error (a provider's native library broke): fail the job, keep the worker
            return;
        }
        completed.increment();
        op.complete(result);
    }

    private void failOne(PendingOperation op, Throwable cause) {
        failed.increment();
        op.fail(cause);
    }

    private static void runTask(Runnable task) {
        try {
            task.run();
        } catch (Throwable t) {
            LOGGER.log(System.Logger.Level.WARNING, "a task on the software engine's workers threw", t);
        }
    }

    private IllegalStateException closedException() {
        return new IllegalStateException("engine '" + name() + "' is closed");
    }

    @Override
    public String toString() {
        return "SoftwareEngine[" + name() + ", workers=" + workers.size() + ", queued=" + queue.size() + '/'
                + queueCapacity + ", provider=" + (provider == null ? "JDK" : provider.getName()) + ']';
    }

    /**
     * Configures a {@link SoftwareEngine}.
     *
     * <p><b>Threading.</b> Not thread-safe; use it on one thread, then share the engine it builds.
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
            SignatureScheme scheme = switch (privateKey.getAlgorithm()) {
                case "RSA" -> SignatureScheme.RSA_PKCS1_SHA256;
                case "EC" -> SignatureScheme.ECDSA_SECP256R1_SHA256;
                case "EdDSA", "Ed25519" -> SignatureScheme.ED25519;
                default -> throw new IllegalArgumentException("key algorithm " + privateKey.getAlgorithm()
                        + " is not supported; use an RSA, EC (P-256, P-384, P-521) or Ed25519 key");
            };
            if (!publicKey.getAlgorithm().equals(privateKey.getAlgorithm())) {
                throw new IllegalStateException("the public key is " + publicKey.getAlgorithm()
                        + " but the private key is " + privateKey.getAlgorithm() + "; give the matching pair");
            }
            byte[] probe = new byte[32];
            new SecureRandom().nextBytes(probe);
            boolean ok;
            try {
                byte[] sig = signer.perform(KeyOperation.sign(scheme, probe));
                Signature verifier = Signature.getInstance(scheme.jcaAlgorithm());
                verifier.initVerify(publicKey);
                verifier.update(probe);
                ok = verifier.verify(sig);
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
