package io.asyncctx.engine.pkcs11;

import io.asyncctx.engine.AbstractAsyncEngine.FdMode;

import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;

/**
 * Configures and builds a {@link Pkcs11Engine}: the module, the token (label, serial, slot id), the PIN source, the key
 * (label and/or id), or all of it as one PKCS#11 URI (RFC 7512), and optionally the certificate chain (else it is read
 * from the token).
 *
 * <p><b>Threading.</b> Not thread-safe; use from one thread. {@link #build()} blocks (it loads the module, logs in and
 * signs a test challenge on the token): call it at startup, never on an event loop.
 */
public final class Pkcs11EngineBuilder {
    private Path modulePath;
    private String tokenLabel;
    private String serial;
    private String manufacturer;
    private String model;
    private Long slot;
    private Path pinFile;
    private String pinEnvVar;
    private String keyLabel;
    private byte[] keyId;
    private X509Certificate[] chain;
    private int threads = 2;
    private int queueCapacity = 256;
    private FdMode fdMode = FdMode.SHARED_PER_LOOP;
    private String name;
    private Duration closeTimeout = Duration.ofSeconds(10);

    Pkcs11EngineBuilder() {
    }

    /**
     * Takes the token, the key, and when present the module ({@code module-path=}) and PIN file
     * ({@code pin-source=file:}) from a PKCS#11 URI such as {@code pkcs11:token=web;object=tls-key;type=private}.
     * Replaces the token and key selection set before; a module or PIN source set before stays unless the URI has one.
     *
     * @throws IllegalArgumentException when the URI is malformed or names no key
     */
    public Pkcs11EngineBuilder uri(String uri) {
        Pkcs11Uri u = Pkcs11Uri.parse(uri);
        tokenLabel = u.token();
        serial = u.serial();
        manufacturer = u.manufacturer();
        model = u.model();
        slot = u.slotId();
        keyLabel = u.object();
        keyId = u.id();
        if (u.modulePath() != null) {
            modulePath = u.modulePath();
        }
        if (u.pinFile() != null) {
            pinFile(u.pinFile());
        }
        return this;
    }

    /** The PKCS#11 module (shared library), such as /usr/lib/softhsm/libsofthsm2.so. Required (here or in the URI). */
    public Pkcs11EngineBuilder modulePath(Path modulePath) {
        this.modulePath = Objects.requireNonNull(modulePath, "modulePath");
        return this;
    }

    /** Selects the token by its label. */
    public Pkcs11EngineBuilder tokenLabel(String tokenLabel) {
        this.tokenLabel = Objects.requireNonNull(tokenLabel, "tokenLabel");
        this.slot = null;
        return this;
    }

    /** Selects the token by its serial number. */
    public Pkcs11EngineBuilder serial(String serial) {
        this.serial = Objects.requireNonNull(serial, "serial");
        return this;
    }

    /** Selects the token by its PKCS#11 slot id; replaces a token label set before. */
    public Pkcs11EngineBuilder slot(long slotId) {
        if (slotId < 0) {
            throw new IllegalArgumentException("slotId: " + slotId + " (expected a PKCS#11 slot id, >= 0)");
        }
        this.slot = slotId;
        this.tokenLabel = null;
        return this;
    }

    /**
     * Reads the user PIN from this file (UTF-8; a trailing newline is ignored). It must be readable by the server's
     * user only (chmod 600): a file group or others can read is refused. Replaces an environment variable set before.
     */
    public Pkcs11EngineBuilder pinFile(Path pinFile) {
        this.pinFile = Objects.requireNonNull(pinFile, "pinFile");
        this.pinEnvVar = null;
        return this;
    }

    /** Reads the user PIN from this environment variable. Replaces a PIN file set before. */
    public Pkcs11EngineBuilder pinEnvironmentVariable(String name) {
        this.pinEnvVar = Objects.requireNonNull(name, "name");
        this.pinFile = null;
        return this;
    }

    /** The label (CKA_LABEL) of the private key. */
    public Pkcs11EngineBuilder keyLabel(String keyLabel) {
        this.keyLabel = Objects.requireNonNull(keyLabel, "keyLabel");
        return this;
    }

    /** The CKA_ID of the private key (with or without a label). */
    public Pkcs11EngineBuilder keyId(byte[] keyId) {
        this.keyId = Objects.requireNonNull(keyId, "keyId").clone();
        return this;
    }

    /**
     * The certificate chain (leaf first) of the key. Without it the engine reads the certificate object with the key's
     * CKA_ID from the token.
     */
    public Pkcs11EngineBuilder certificateChain(X509Certificate... chain) {
        if (Objects.requireNonNull(chain, "chain").length == 0) {
            throw new IllegalArgumentException("chain is empty: give at least the key's own certificate");
        }
        this.chain = chain.clone();
        return this;
    }

    /** Worker threads, each with its own token session (default 2); match the token's parallelism. */
    public Pkcs11EngineBuilder threads(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads: " + threads + " (expected at least 1)");
        }
        this.threads = threads;
        return this;
    }

    /** Operations waiting for a worker at most (default 256); beyond that, submissions answer EAGAIN. */
    public Pkcs11EngineBuilder queueCapacity(int queueCapacity) {
        if (queueCapacity < 1) {
            throw new IllegalArgumentException("queueCapacity: " + queueCapacity + " (expected at least 1)");
        }
        this.queueCapacity = queueCapacity;
        return this;
    }

    /** How the fd path signals (default {@link FdMode#SHARED_PER_LOOP}). */
    public Pkcs11EngineBuilder fdMode(FdMode fdMode) {
        this.fdMode = Objects.requireNonNull(fdMode, "fdMode");
        return this;
    }

    /** The engine's name for logs, metrics and thread names (default "pkcs11-N"). */
    public Pkcs11EngineBuilder name(String name) {
        this.name = Objects.requireNonNull(name, "name");
        return this;
    }

    /**
     * How long {@link Pkcs11Engine#close()} waits for an operation in progress on the token (default 10 seconds). A
     * token call cannot be interrupted: when a hung HSM or a stalled network token holds a worker past this time,
     * {@code close()} returns anyway, fails what is queued and logs the engine's share of the login out, and the
     * worker's thread and the module stay until the token answers. Fit it to the server's shutdown budget.
     */
    public Pkcs11EngineBuilder closeTimeout(Duration timeout) {
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative()) {
            throw new IllegalArgumentException("closeTimeout: " + timeout + " (expected zero or more)");
        }
        this.closeTimeout = timeout;
        return this;
    }

    /**
     * Loads the module, finds the token, logs in, finds the key and its certificate (given, or on the token), checks
     * that they match by signing a random challenge on the token, and starts the workers.
     *
     * @throws IllegalArgumentException when the configuration is incomplete or wrong; the message says what to do
     * @throws IllegalStateException when the token refuses (wrong PIN, missing key or certificate, mismatch,
     *     unsupported key type); the message says what to do
     */
    public Pkcs11Engine build() {
        Pkcs11Settings settings = settings();
        WrapperCryptoki.checkModuleFile(settings.modulePath());
        return Pkcs11EngineFactory.open(settings, WrapperCryptoki::load);
    }

    /**
     * The settings as they are now, checked complete; the engine's name is chosen here when none was given.
     *
     * @throws IllegalArgumentException when the module, the PIN source or the key is missing
     */
    Pkcs11Settings settings() {
        if (modulePath == null) {
            throw new IllegalArgumentException("no PKCS#11 module: call modulePath(path of the token's PKCS#11 module, "
                    + "for example /usr/lib/softhsm/libsofthsm2.so) or put module-path= in the URI");
        }
        if (pinFile == null && pinEnvVar == null) {
            throw new IllegalArgumentException("no PIN source: call pinFile(path) or pinEnvironmentVariable(name), or "
                    + "put pin-source=file:/path in the URI");
        }
        if (keyLabel == null && keyId == null) {
            throw new IllegalArgumentException("no key named: call keyLabel(label) or keyId(id), or give a URI with "
                    + "object= or id=");
        }
        return new Pkcs11Settings(name != null ? name : Pkcs11Engine.nextName(), modulePath, tokenLabel, serial,
                manufacturer, model, slot, pinFile, pinEnvVar, keyLabel, keyId,
                chain == null ? null : Arrays.asList(chain), threads, queueCapacity, fdMode, closeTimeout);
    }
}
