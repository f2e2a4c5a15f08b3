package io.asyncctx.engine.pkcs11;

import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.KeySigner;
import org.xipki.pkcs11.wrapper.PKCS11Constants;
import org.xipki.pkcs11.wrapper.PKCS11Exception;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.Objects;
import java.util.function.UnaryOperator;

/**
 * Configures and builds a {@link Pkcs11Engine}: the module, the token (label, serial, slot id), the PIN source, the key
 * (label and/or id), or all of it as one PKCS#11 URI (RFC 7512), and optionally the certificate chain (else it is read
 * from the token).
 *
 * <p><b>Threading.</b> Not thread-safe; use from one thread. {@link #build()} blocks (it loads the module, logs in and
 * signs a test challenge on the token): call it at startup, never on an event loop.
 */
public final class Pkcs11EngineBuilder {
    Path modulePath;
    String tokenLabel;
    String serial;
    String manufacturer;
    String model;
    Long slot;
    Path pinFile;
    String pinEnvVar;
    String keyLabel;
    byte[] keyId;
    X509Certificate[] chain;
    int threads = 2;
    int queueCapacity = 256;
    FdMode fdMode = FdMode.SHARED_PER_LOOP;
    String name;
    UnaryOperator<KeySigner> signerDecorator = UnaryOperator.identity();
    long closeJoinMillis = 10_000;

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

    /** Test seam: wraps each worker's token signer (to hold a worker busy, for example). */
    Pkcs11EngineBuilder signerDecorator(UnaryOperator<KeySigner> decorator) {
        this.signerDecorator = Objects.requireNonNull(decorator, "decorator");
        return this;
    }

    /** Test seam: how long {@link Pkcs11Engine#close()} waits for a busy worker (default 10 s). */
    Pkcs11EngineBuilder closeJoinMillis(long millis) {
        if (millis < 0) {
            throw new IllegalArgumentException("closeJoinMillis: " + millis + " (expected >= 0)");
        }
        this.closeJoinMillis = millis;
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
        checkComplete();
        String engineName = name != null ? name : Pkcs11Engine.nextName();
        char[] pin = pinFile != null ? PinSource.fromFile(pinFile) : PinSource.fromEnvironment(pinEnvVar);
        TokenModule module;
        try {
            module = TokenModule.acquire(modulePath);
        } catch (RuntimeException e) {
            Arrays.fill(pin, '\0');
            throw e;
        }
        TokenAccess access = new TokenAccess(module, tokenLabel, serial, manufacturer, model, slot, keyLabel,
                keyId == null ? null : keyId.clone(), pin);
        boolean success = false;
        try {
            Pkcs11Engine engine = buildOn(engineName, access);
            success = true;
            return engine;
        } finally {
            if (!success) {
                access.wipePin();
                module.release();
            }
        }
    }

    private Pkcs11Engine buildOn(String engineName, TokenAccess access) {
        TokenModule module = access.module();
        TokenAccess.OpenSession open;
        module.calls().lock();
        try {
            try {
                open = access.open();
            } catch (PKCS11Exception e) {
                throw loginFailure(e, access);
            }
            try {
                TokenMechanisms.KeyKind kind = keyKind(access, open);
                X509Certificate[] certs = chain != null ? chain : chainFromToken(access, open);
                TokenMechanisms.KeyKind certKind = TokenMechanisms.KeyKind.ofJca(certs[0].getPublicKey()
                        .getAlgorithm());
                if (certKind != kind) {
                    throw mismatch(access, certs[0], "the certificate holds a " + certs[0].getPublicKey()
                            .getAlgorithm() + " key but the token key is " + kind.jcaAlgorithm);
                }
                boolean matches;
                try {
                    matches = Pkcs11Engine.matches(open, kind, certs[0].getPublicKey());
                } catch (GeneralSecurityException | RuntimeException e) {
                    String hint = Pkcs11Errors.code(e) != PKCS11Constants.CKR_MECHANISM_INVALID ? ""
                            : "; the module does not offer the mechanism for a " + kind.jcaAlgorithm + " key (list "
                            + "them with: pkcs11-tool --module " + modulePath + " -M)" + (kind
                            == TokenMechanisms.KeyKind.ED25519 ? ", and p11-kit 0.24's RPC (Debian 12) does not "
                            + "forward CKM_EDDSA: use an RSA or EC key through p11-kit" : "");
                    throw new IllegalStateException("the key " + access.keyDescription() + " on the token "
                            + access.tokenDescription() + " cannot sign a test challenge: " + Pkcs11Errors.text(e)
                            + hint, e);
                }
                if (!matches) {
                    throw mismatch(access, certs[0], "a signature by the key does not verify with the certificate's "
                            + "public key");
                }
                module.loggedIn(open.slotId());
                Pkcs11Engine engine = Pkcs11Engine.start(engineName, this, access, open, certs, kind);
                open = null; // the engine keeps it: the login lasts as long as the engine
                return engine;
            } finally {
                if (open != null) {
                    access.close(open);
                }
            }
        } finally {
            module.calls().unlock();
        }
    }

    private void checkComplete() {
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
        if (!Files.isRegularFile(modulePath) || !Files.isReadable(modulePath)) {
            throw new IllegalArgumentException("PKCS#11 module library not found or not readable: " + modulePath
                    + "; install the token's PKCS#11 module (SoftHSM2: apt-get install softhsm2, module "
                    + "/usr/lib/softhsm/libsofthsm2.so; p11-kit client: apt-get install p11-kit-modules, module "
                    + "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so) or fix the module path");
        }
    }

    private RuntimeException loginFailure(PKCS11Exception e, TokenAccess access) {
        String source = pinFile != null ? "the PIN file " + pinFile : "the environment variable " + pinEnvVar;
        if (e.getErrorCode() == PKCS11Constants.CKR_PIN_INCORRECT) {
            return new IllegalStateException("wrong PIN for the token " + access.tokenDescription()
                    + " (CKR_PIN_INCORRECT); fix the PIN in " + source + " (tokens lock the user PIN after a few failed "
                    + "attempts)", e);
        }
        return new IllegalStateException("login to the token " + access.tokenDescription() + " failed: "
                + Pkcs11Errors.text(e) + "; check the PIN in " + source + " and that the token's user PIN is "
                + "initialized", e);
    }

    private static TokenMechanisms.KeyKind keyKind(TokenAccess access, TokenAccess.OpenSession open) {
        long type;
        try {
            type = access.keyType(open);
        } catch (PKCS11Exception e) {
            throw new IllegalStateException("cannot read the key type of " + access.keyDescription() + ": "
                    + Pkcs11Errors.text(e), e);
        }
        TokenMechanisms.KeyKind kind = TokenMechanisms.KeyKind.ofCkk(type);
        if (kind == null) {
            throw new IllegalStateException("the key " + access.keyDescription() + " on the token "
                    + access.tokenDescription() + " has key type 0x" + Long.toHexString(type) + "; use an RSA, EC "
                    + "(P-256, P-384) or Ed25519 key");
        }
        return kind;
    }

    private static X509Certificate[] chainFromToken(TokenAccess access, TokenAccess.OpenSession open) {
        byte[] der;
        try {
            der = access.certificateOnToken(open);
        } catch (PKCS11Exception e) {
            throw new IllegalStateException("cannot read the certificate of " + access.keyDescription() + " on the "
                    + "token: " + Pkcs11Errors.text(e), e);
        }
        if (der == null) {
            throw new IllegalStateException("no certificate given and none on the token for the key "
                    + access.keyDescription() + " (" + access.tokenDescription() + "); give the certificate file "
                    + "(--cert FILE, or certificateChain(...)), or store it on the token with the key's id: pkcs11-tool "
                    + "--module MODULE --token-label TOKEN --login --write-object cert.der --type cert --id ID");
        }
        try {
            return new X509Certificate[]{Pkcs11Engine.certificate(der)};
        } catch (CertificateException e) {
            throw new IllegalStateException("the certificate object of " + access.keyDescription() + " on the token "
                    + "is not an X.509 certificate: " + e.getMessage(), e);
        }
    }

    private static IllegalStateException mismatch(TokenAccess access, X509Certificate cert, String why) {
        return new IllegalStateException("the private key " + access.keyDescription() + " on the token "
                + access.tokenDescription() + " does not match the certificate " + cert.getSubjectX500Principal()
                + ": " + why + "; give the certificate of this key (or the key of this certificate)");
    }
}
