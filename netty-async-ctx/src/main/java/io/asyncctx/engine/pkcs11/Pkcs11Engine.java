package io.asyncctx.engine.pkcs11;

import io.asyncctx.engine.AbstractAsyncEngine;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.engine.PendingOperation;
import io.asyncctx.engine.SignatureScheme;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.ProviderException;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.UnrecoverableKeyException;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.UnaryOperator;
import javax.security.auth.login.FailedLoginException;
import javax.security.auth.login.LoginException;

/**
 * An engine whose private key lives on a PKCS#11 token (an HSM, a smart card, SoftHSM2) and never leaves it: signatures
 * (RSA PKCS#1 and PSS, ECDSA) and raw RSA decryptions (TLS 1.2 static-RSA key exchange) run on the token through the
 * JDK's SunPKCS11 provider, on the engine's own worker threads. Each engine configures its own SunPKCS11 instance and
 * never installs it globally.
 *
 * <p><b>Threading.</b> Thread-safe. {@link #offer} and {@link #cancel} run on the submitting connection's owner thread
 * and never block: an operation goes into a bounded queue, and when the queue is full the job's status becomes EAGAIN.
 * A fixed pool of worker threads takes operations from the queue and performs them on the token (blocking calls into
 * the PKCS#11 module). {@link #close()} may be called from any thread: it stops the workers, fails the operations
 * still queued and logs out of the token (unless another engine of this JVM is still logged in to it).
 *
 * <p><b>Limits of SunPKCS11</b> that the builder checks: EdDSA keys cannot be used (build fails with what to do), and
 * the key is found only when a certificate object with the key's CKA_ID is on the token.
 */
public final class Pkcs11Engine extends AbstractAsyncEngine {

    private static final AtomicInteger ENGINE_IDS = new AtomicInteger();

    private final Provider provider;
    private final KeySigner signer;
    private final X509Certificate[] chain;
    private final String keyLabel;
    private final String tokenKey;
    private final BlockingQueue<PendingOperation> queue;
    private final Thread[] workers;
    private final AtomicLong completed = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();
    private final Object closeLock = new Object();
    private volatile boolean stopping;
    private boolean loggedOut;

    private Pkcs11Engine(String name, Builder b, Provider provider, KeySigner signer, X509Certificate[] chain,
                         String tokenKey) {
        super(name, b.fdMode);
        this.provider = provider;
        this.signer = signer;
        this.chain = chain;
        this.keyLabel = b.keyLabel;
        this.tokenKey = tokenKey;
        this.queue = new ArrayBlockingQueue<>(b.queueCapacity);
        this.workers = new Thread[b.threads];
        for (int i = 0; i < workers.length; i++) {
            Thread t = new Thread(this::work, name + "-worker-" + i);
            t.setDaemon(true);
            workers[i] = t;
        }
    }

    /** A builder for an engine. */
    public static Builder builder() {
        return new Builder();
    }

    /** The public key, from the token's certificate object of the key. */
    @Override
    public PublicKey publicKey() {
        return signer.publicKey();
    }

    /** The certificate chain stored with the key on the token (at least the key's own certificate). */
    public X509Certificate[] certificateChain() {
        return chain.clone();
    }

    /** The engine's own SunPKCS11 provider instance (not installed in {@link Security}). */
    public Provider provider() {
        return provider;
    }

    /** The key's label on the token (its KeyStore alias). */
    public String keyLabel() {
        return keyLabel;
    }

    /** "RSA" or "EC". */
    public String keyAlgorithm() {
        return chain[0].getPublicKey().getAlgorithm();
    }

    /** Operations performed on the token and delivered with a result. Any thread. */
    public long completedOperations() {
        return completed.get();
    }

    /** Operations that failed on the token (or were still queued at close). Any thread. */
    public long failedOperations() {
        return failed.get();
    }

    /** Operations waiting in the queue now. Any thread. */
    public int queuedOperations() {
        return queue.size();
    }

    /** The number of worker threads still alive. Any thread. */
    public int liveWorkers() {
        int n = 0;
        for (Thread t : workers) {
            if (t.isAlive()) {
                n++;
            }
        }
        return n;
    }

    @Override
    protected boolean offer(PendingOperation operation) {
        if (stopping) {
            operation.fail(new IllegalStateException("engine '" + name() + "' is closed"));
            return true;
        }
        if (!queue.offer(operation)) {
            return false;
        }
        if (stopping && queue.remove(operation)) {
            // Raced with close(): its drain may have run before this offer; fail the operation here instead.
            operation.fail(new IllegalStateException("engine '" + name() + "' was closed before the operation ran"));
        }
        return true;
    }

    @Override
    protected void cancel(PendingOperation operation) {
        queue.remove(operation);
    }

    private void work() {
        while (!stopping) {
            PendingOperation op;
            try {
                op = queue.take();
            } catch (InterruptedException e) {
                if (stopping) {
                    return;
                }
                continue;
            }
            if (op.isCancelled()) {
                continue;
            }
            try {
                byte[] result = signer.perform(op.operation());
                completed.incrementAndGet();
                op.complete(result);
            } catch (GeneralSecurityException | RuntimeException e) {
                failed.incrementAndGet();
                op.fail(e);
            } catch (Error e) {
                // Keep the worker (and the engine's capacity) alive; the operation fails with the error.
                failed.incrementAndGet();
                op.fail(e);
            }
        }
    }

    /**
     * Stops the workers (an operation in progress on the token finishes first), fails the operations still queued,
     * and logs out of the token when no other engine of this JVM is logged in to it. Idempotent; any thread; waits up
     * to 10 seconds for the workers.
     */
    @Override
    public void close() {
        synchronized (closeLock) {
            if (loggedOut) {
                return;
            }
            loggedOut = true;
            stopping = true;
            for (Thread t : workers) {
                t.interrupt();
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            for (Thread t : workers) {
                long left = deadline - System.nanoTime();
                if (left > 0) {
                    try {
                        t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        break;
                    }
                }
            }
            IllegalStateException closed = new IllegalStateException("engine '" + name() + "' was closed before the "
                    + "operation ran");
            for (PendingOperation op; (op = queue.poll()) != null; ) {
                failed.incrementAndGet();
                op.fail(closed);
            }
            if (TokenLogins.release(tokenKey) && provider instanceof java.security.AuthProvider auth) {
                try {
                    auth.logout();
                } catch (LoginException e) {
                    // Nothing else to do on close; the session ends with the JVM at the latest.
                }
            }
            super.close();
        }
    }

    private void start() {
        for (Thread t : workers) {
            t.start();
        }
    }

    @Override
    public String toString() {
        return "Pkcs11Engine[" + name() + ", key '" + keyLabel + "', " + keyAlgorithm() + ", provider "
                + provider.getName() + ']';
    }

    /**
     * Configures and builds a {@link Pkcs11Engine}. Set the module, the token (label or slot), the PIN source and the
     * key label; the rest has defaults.
     *
     * <p><b>Threading.</b> Not thread-safe; use from one thread. {@link #build()} blocks (it loads the module, logs in
     * and signs a test challenge on the token): call it at startup, never on an event loop.
     */
    public static final class Builder {
        private Path modulePath;
        private String tokenLabel;
        private Long slot;
        private Path pinFile;
        private String pinEnvVar;
        private String keyLabel;
        private int threads = 2;
        private int queueCapacity = 256;
        private FdMode fdMode = FdMode.SHARED_PER_LOOP;
        private String name;
        private UnaryOperator<KeySigner> signerDecorator = UnaryOperator.identity();

        private Builder() {
        }

        /** The PKCS#11 module (shared library) of the token, such as /usr/lib/softhsm/libsofthsm2.so. Required. */
        public Builder modulePath(Path modulePath) {
            this.modulePath = Objects.requireNonNull(modulePath, "modulePath");
            return this;
        }

        /** Selects the token by its label (CKA label of the token); replaces a slot set before. */
        public Builder tokenLabel(String tokenLabel) {
            this.tokenLabel = Objects.requireNonNull(tokenLabel, "tokenLabel");
            this.slot = null;
            return this;
        }

        /** Selects the token by its PKCS#11 slot id; replaces a token label set before. */
        public Builder slot(long slotId) {
            if (slotId < 0) {
                throw new IllegalArgumentException("slotId: " + slotId + " (expected a PKCS#11 slot id, >= 0)");
            }
            this.slot = slotId;
            this.tokenLabel = null;
            return this;
        }

        /**
         * Reads the user PIN from this file (UTF-8; a trailing newline is ignored). Make it readable by the server's
         * user only. Replaces an environment variable set before.
         */
        public Builder pinFile(Path pinFile) {
            this.pinFile = Objects.requireNonNull(pinFile, "pinFile");
            this.pinEnvVar = null;
            return this;
        }

        /** Reads the user PIN from this environment variable. Replaces a PIN file set before. */
        public Builder pinEnvironmentVariable(String name) {
            this.pinEnvVar = Objects.requireNonNull(name, "name");
            this.pinFile = null;
            return this;
        }

        /** The label (KeyStore alias) of the private key and of its certificate object on the token. Required. */
        public Builder keyLabel(String keyLabel) {
            this.keyLabel = Objects.requireNonNull(keyLabel, "keyLabel");
            return this;
        }

        /** Worker threads calling into the token at once (default 2); match the token's parallelism. */
        public Builder threads(int threads) {
            if (threads < 1) {
                throw new IllegalArgumentException("threads: " + threads + " (expected at least 1)");
            }
            this.threads = threads;
            return this;
        }

        /** Operations waiting for a worker at most (default 256); beyond that, submissions answer EAGAIN. */
        public Builder queueCapacity(int queueCapacity) {
            if (queueCapacity < 1) {
                throw new IllegalArgumentException("queueCapacity: " + queueCapacity + " (expected at least 1)");
            }
            this.queueCapacity = queueCapacity;
            return this;
        }

        /** How the fd path signals (default {@link FdMode#SHARED_PER_LOOP}). */
        public Builder fdMode(FdMode fdMode) {
            this.fdMode = Objects.requireNonNull(fdMode, "fdMode");
            return this;
        }

        /** The engine's name for logs, metrics and thread names (default "pkcs11-N"). */
        public Builder name(String name) {
            this.name = Objects.requireNonNull(name, "name");
            return this;
        }

        /** Test seam: wraps the token signer (to hold a worker busy, for example). */
        Builder signerDecorator(UnaryOperator<KeySigner> decorator) {
            this.signerDecorator = Objects.requireNonNull(decorator, "decorator");
            return this;
        }

        /**
         * Loads the module, finds the token, logs in, finds the key and its certificate, checks that they match by
         * signing a random challenge on the token, and starts the workers. Blocking; call it at startup.
         *
         * @throws IllegalArgumentException when the configuration is incomplete or wrong; the message says what to do
         * @throws IllegalStateException when the token refuses (wrong PIN, missing key or certificate, mismatch,
         *     unsupported key type); the message says what to do
         */
        public Pkcs11Engine build() {
            if (modulePath == null) {
                throw new IllegalArgumentException("modulePath is not set: call modulePath(path of the token's PKCS#11 "
                        + "module, for example /usr/lib/softhsm/libsofthsm2.so)");
            }
            if (tokenLabel == null && slot == null) {
                throw new IllegalArgumentException("no token selected: call tokenLabel(label) or slot(slotId)");
            }
            if (pinFile == null && pinEnvVar == null) {
                throw new IllegalArgumentException("no PIN source: call pinFile(path) or pinEnvironmentVariable(name)");
            }
            if (keyLabel == null) {
                throw new IllegalArgumentException("keyLabel is not set: call keyLabel(label of the key on the token)");
            }
            if (!Files.isRegularFile(modulePath) || !Files.isReadable(modulePath)) {
                throw new IllegalArgumentException("PKCS#11 module library not found or not readable: " + modulePath
                        + "; install the token's PKCS#11 module (for SoftHSM2: apt-get install softhsm2, module "
                        + "/usr/lib/softhsm/libsofthsm2.so) or fix modulePath");
            }
            String engineName = name != null ? name : "pkcs11-" + ENGINE_IDS.incrementAndGet();
            Provider provider = tokenLabel != null ? providerForLabel(engineName) : configure(engineName,
                    "slot = " + slot);
            String tokenKey = modulePath.toAbsolutePath().normalize() + "#" + slotIdOrConfig(provider);
            char[] pin = readPin();
            KeyStore keyStore;
            try {
                keyStore = login(provider, pin);
            } finally {
                Arrays.fill(pin, '\0');
            }
            TokenLogins.acquire(tokenKey);
            boolean success = false;
            try {
                X509Certificate[] chain = findChain(keyStore);
                PrivateKey key = findKey(keyStore, chain[0]);
                KeySigner tokenSigner = new JcaKeySigner(key, chain[0].getPublicKey(), provider);
                checkMatch(tokenSigner, chain[0]);
                Pkcs11Engine engine = new Pkcs11Engine(engineName, this, provider, signerDecorator.apply(tokenSigner),
                        chain, tokenKey);
                engine.start();
                success = true;
                return engine;
            } finally {
                if (!success && TokenLogins.release(tokenKey)) {
                    logoutQuietly(provider);
                }
            }
        }

        private Provider configure(String engineName, String slotLine) {
            Provider base = Security.getProvider("SunPKCS11");
            if (base == null) {
                throw new IllegalStateException("the JDK's SunPKCS11 provider is missing (module jdk.crypto.cryptoki); "
                        + "run on a full JDK or add the module to the runtime image");
            }
            String config = "--name = " + engineName + "\nlibrary = \"" + modulePath.toAbsolutePath() + "\"\n"
                    + slotLine + "\n";
            try {
                return base.configure(config);
            } catch (ProviderException | java.security.InvalidParameterException e) {
                throw new IllegalStateException("SunPKCS11 cannot open " + slotLine.replace(" = ", " ")
                        + " of PKCS#11 module " + modulePath + ": " + rootMessage(e)
                        + "; check the module path and the slot (list slots with: pkcs11-tool --module " + modulePath
                        + " --list-slots)", e);
            }
        }

        /** Finds the slot whose token has the label: SunPKCS11 only selects slots, so probe each slot index. */
        private Provider providerForLabel(String engineName) {
            List<String> found = new ArrayList<>();
            for (int index = 0; index < 1024; index++) {
                Provider candidate;
                try {
                    candidate = Security.getProvider("SunPKCS11").configure("--name = " + engineName + "\nlibrary = \""
                            + modulePath.toAbsolutePath() + "\"\nslotListIndex = " + index + "\n");
                } catch (ProviderException e) {
                    if (rootMessage(e).contains("slotListIndex is " + index)) {
                        break; // past the last slot
                    }
                    continue; // an empty slot or a broken token: not ours
                }
                String label;
                try {
                    label = TokenIntrospection.tokenLabel(candidate);
                } catch (IllegalStateException e) {
                    continue;
                }
                if (label.equals(tokenLabel)) {
                    return candidate;
                }
                found.add(label);
            }
            throw new IllegalStateException("no token labelled '" + tokenLabel + "' in PKCS#11 module " + modulePath
                    + "; token labels found: " + found + "; fix tokenLabel, or initialize the token (softhsm2-util "
                    + "--init-token --free --label " + tokenLabel + ")");
        }

        private String slotIdOrConfig(Provider provider) {
            try {
                return Long.toString(TokenIntrospection.slotId(provider));
            } catch (IllegalStateException e) {
                return tokenLabel != null ? "label:" + tokenLabel : "slot:" + slot;
            }
        }

        private char[] readPin() {
            if (pinEnvVar != null) {
                String value = System.getenv(pinEnvVar);
                if (value == null || value.isEmpty()) {
                    throw new IllegalArgumentException("environment variable " + pinEnvVar + " (the token PIN) is not "
                            + "set; set it in the server's environment, or give a PIN file instead");
                }
                return value.toCharArray();
            }
            byte[] bytes;
            try {
                bytes = Files.readAllBytes(pinFile);
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot read the PIN file " + pinFile + " (" + e + "); create it "
                        + "with the token's user PIN, readable by the server's user only", e);
            }
            try {
                int end = bytes.length;
                while (end > 0 && (bytes[end - 1] == '\n' || bytes[end - 1] == '\r')) {
                    end--;
                }
                if (end == 0) {
                    throw new IllegalArgumentException("the PIN file " + pinFile + " is empty; write the token's "
                            + "user PIN into it");
                }
                CharBuffer chars = StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(bytes, 0, end));
                char[] pin = new char[chars.remaining()];
                chars.get(pin);
                Arrays.fill(chars.array(), '\0');
                return pin;
            } catch (CharacterCodingException e) {
                throw new IllegalArgumentException("the PIN file " + pinFile + " is not UTF-8 text", e);
            } finally {
                Arrays.fill(bytes, (byte) 0);
            }
        }

        private KeyStore login(Provider provider, char[] pin) {
            try {
                KeyStore ks = KeyStore.getInstance("PKCS11", provider);
                ks.load(null, pin);
                return ks;
            } catch (IOException e) {
                if (hasCause(e, UnrecoverableKeyException.class) || hasCause(e, FailedLoginException.class)
                        || rootMessage(e).contains("CKR_PIN_INCORRECT")) {
                    throw new IllegalStateException("wrong PIN for the token " + tokenDescription()
                            + " (CKR_PIN_INCORRECT); fix the PIN in " + pinSource() + " (tokens lock the user PIN "
                            + "after a few failed attempts)", e);
                }
                throw new IllegalStateException("login to the token " + tokenDescription() + " failed: "
                        + rootMessage(e) + "; check the PIN in " + pinSource() + " and that the token's user PIN is "
                        + "initialized", e);
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("cannot open the KeyStore of the token " + tokenDescription() + ": "
                        + rootMessage(e), e);
            }
        }

        private X509Certificate[] findChain(KeyStore ks) {
            try {
                if (!ks.isKeyEntry(keyLabel)) {
                    List<String> aliases = Collections.list(ks.aliases());
                    List<String> keys = new ArrayList<>();
                    for (String a : aliases) {
                        if (ks.isKeyEntry(a)) {
                            keys.add(a);
                        }
                    }
                    String why = aliases.contains(keyLabel)
                            ? "'" + keyLabel + "' is only a certificate: no private key with its CKA_ID is on the token"
                            : "no private key labelled '" + keyLabel + "' is visible";
                    throw new IllegalStateException(why + " on the token " + tokenDescription() + "; key aliases "
                            + "found: " + keys + ", all aliases: " + aliases + ". SunPKCS11 shows a private key only "
                            + "when a certificate object with the same CKA_ID is on the token: store it with "
                            + "pkcs11-tool --module " + modulePath + " --login --write-object cert.der --type cert "
                            + "--id <key id> --label " + keyLabel);
                }
                Certificate[] certs = ks.getCertificateChain(keyLabel);
                if (certs == null || certs.length == 0) {
                    throw new IllegalStateException("the key '" + keyLabel + "' has no certificate on the token "
                            + tokenDescription() + "; store it with pkcs11-tool --write-object cert.der --type cert "
                            + "--id <key id> --label " + keyLabel);
                }
                X509Certificate[] chain = new X509Certificate[certs.length];
                for (int i = 0; i < certs.length; i++) {
                    chain[i] = (X509Certificate) certs[i];
                }
                String alg = chain[0].getPublicKey().getAlgorithm();
                if (!"RSA".equals(alg) && !"EC".equals(alg)) {
                    throw new IllegalStateException("the key '" + keyLabel + "' is an " + alg + " key; the JDK's "
                            + "SunPKCS11 provider cannot sign with " + alg + " keys (only RSA and EC): put an RSA "
                            + "or EC P-256/P-384 key on the token, or use a software engine for " + alg);
                }
                return chain;
            } catch (java.security.KeyStoreException e) {
                throw new IllegalStateException("cannot read the key '" + keyLabel + "' on the token "
                        + tokenDescription() + ": " + rootMessage(e), e);
            }
        }

        private PrivateKey findKey(KeyStore ks, X509Certificate cert) {
            try {
                Key key = ks.getKey(keyLabel, null);
                if (!(key instanceof PrivateKey pk)) {
                    throw new IllegalStateException("'" + keyLabel + "' on the token " + tokenDescription()
                            + " is not a private key");
                }
                return pk;
            } catch (GeneralSecurityException | ProviderException e) {
                throw new IllegalStateException("cannot use the key '" + keyLabel + "' on the token "
                        + tokenDescription() + " (certificate key type " + cert.getPublicKey().getAlgorithm() + "): "
                        + rootMessage(e) + "; use an RSA or EC key", e);
            }
        }

        private void checkMatch(KeySigner tokenSigner, X509Certificate cert) {
            SignatureScheme scheme = "RSA".equals(cert.getPublicKey().getAlgorithm())
                    ? SignatureScheme.RSA_PKCS1_SHA256 : SignatureScheme.ECDSA_SECP256R1_SHA256;
            byte[] challenge = new byte[32];
            new SecureRandom().nextBytes(challenge);
            boolean verified;
            try {
                byte[] sig = tokenSigner.perform(KeyOperation.sign(scheme, challenge));
                Signature verifier = Signature.getInstance(scheme.jcaAlgorithm());
                verifier.initVerify(cert.getPublicKey());
                verifier.update(challenge);
                verified = verifier.verify(sig);
            } catch (GeneralSecurityException | RuntimeException e) {
                throw new IllegalStateException("the key '" + keyLabel + "' on the token " + tokenDescription()
                        + " cannot sign a test challenge: " + rootMessage(e), e);
            }
            if (!verified) {
                throw new IllegalStateException("the private key '" + keyLabel + "' on the token " + tokenDescription()
                        + " does not match its certificate (" + cert.getSubjectX500Principal() + "): a signature by "
                        + "the key does not verify with the certificate's public key; store the certificate of this "
                        + "key with the key's CKA_ID (pkcs11-tool --write-object cert.der --type cert --id <key id>)");
            }
        }

        private String tokenDescription() {
            return (tokenLabel != null ? "'" + tokenLabel + "'" : "in slot " + slot) + " (module " + modulePath + ")";
        }

        private String pinSource() {
            return pinFile != null ? "the PIN file " + pinFile : "the environment variable " + pinEnvVar;
        }
    }

    private static void logoutQuietly(Provider provider) {
        if (provider instanceof java.security.AuthProvider auth) {
            try {
                auth.logout();
            } catch (LoginException | RuntimeException ignored) {
                // Best effort while failing a build.
            }
        }
    }

    private static boolean hasCause(Throwable t, Class<? extends Throwable> type) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (type.isInstance(c)) {
                return true;
            }
        }
        return false;
    }

    private static String rootMessage(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c.getMessage() != null) {
                if (sb.length() > 0) {
                    sb.append(": ");
                }
                sb.append(c.getMessage());
            }
        }
        return sb.length() == 0 ? t.getClass().getName() : sb.toString();
    }
}
