package io.asyncctx.engine.pkcs11;

import io.asyncctx.engine.AbstractAsyncEngine;
import io.asyncctx.engine.EngineWorkers;
import io.asyncctx.engine.KeyMatch;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.engine.PendingOperation;

import java.io.ByteArrayInputStream;
import java.security.GeneralSecurityException;
import java.security.PublicKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An engine whose private key lives on a PKCS#11 token (an HSM, a smart card, SoftHSM2, or a token on another machine
 * through p11-kit's RPC) and never leaves it: RSA PKCS#1 and PSS, ECDSA and Ed25519 signatures and raw RSA decryptions
 * run on the token, through the PKCS#11 API itself (ipkcs11wrapper; see the package notes for why), on the engine's
 * own workers. The token needs to hold only the key: the certificate chain may come from a file.
 *
 * <p><b>Threading.</b> Thread-safe. {@link #offer} runs on the submitting connection's owner thread and never blocks: an
 * operation goes into a bounded queue ({@link EngineWorkers}), and when the queue is full the job's status becomes
 * EAGAIN. Each worker thread has its own token session, logged in once. {@link #close()} (a CAS: only the first call
 * acts) stops the workers, fails what is still queued, closes every session, logs out when no other engine of this JVM
 * uses the token, and releases the module; it blocks while a worker finishes its operation on the token (up to the
 * builder's {@link Pkcs11EngineBuilder#closeTimeout close timeout}, 10 seconds by default), so call it from a thread
 * that may block, never from an event loop.
 *
 * <p><b>Sessions the token drops</b> ({@code CKR_SESSION_HANDLE_INVALID}, {@code CKR_DEVICE_REMOVED}, a p11-kit server
 * that died) are reopened by the worker that met them; the operation fails with the token's reason (or goes to the
 * fallback engine when one is configured) and {@link #sessionFailures()} counts it. The module is re-initialised
 * (which ends the sessions of every engine of the module) only when its device went away or the token left the slot
 * list. When the token refuses the PIN ({@code CKR_PIN_INCORRECT}, {@code CKR_PIN_LOCKED}, {@code CKR_PIN_EXPIRED},
 * say after the PIN was changed and the token restarted), the engine stops logging in, so that it does not lock the
 * token's user PIN with wrong tries, and every operation fails with what to do: fix the PIN file and rebuild the
 * engine ({@link #loginRefused()}).
 */
public final class Pkcs11Engine extends AbstractAsyncEngine {

    private static final AtomicInteger ENGINE_IDS = new AtomicInteger();

    private final TokenAccess access;
    private final TokenAccess.OpenSession loginSession;
    private final long slotId;
    private final X509Certificate[] chain;
    private final TokenMechanisms.KeyKind kind;
    private final EngineWorkers workers;
    private final AtomicLong sessionFailures = new AtomicLong();
    private final long closeTimeoutMillis;

    private Pkcs11Engine(Pkcs11Settings settings, TokenAccess access, TokenAccess.OpenSession loginSession,
                         X509Certificate[] chain, TokenMechanisms.KeyKind kind) {
        super(settings.name(), settings.fdMode());
        this.access = access;
        this.loginSession = loginSession;
        this.slotId = loginSession.slotId();
        this.chain = chain;
        this.kind = kind;
        this.closeTimeoutMillis = settings.closeTimeout().toMillis();
        this.workers = new EngineWorkers(settings.name(), settings.name() + "-worker-", settings.threads(),
                settings.queueCapacity(), () -> new TokenWorker(access, kind, sessionFailures));
    }

    /** A builder for an engine. */
    public static Pkcs11EngineBuilder builder() {
        return new Pkcs11EngineBuilder();
    }

    /** Starts an engine on a session the factory opened and logged in; the engine owns it from now on. */
    static Pkcs11Engine start(Pkcs11Settings settings, TokenAccess access, TokenAccess.OpenSession loginSession,
                              X509Certificate[] chain, TokenMechanisms.KeyKind kind) {
        Pkcs11Engine engine = new Pkcs11Engine(settings, access, loginSession, chain, kind);
        engine.workers.start();
        return engine;
    }

    static String nextName() {
        return "pkcs11-" + ENGINE_IDS.incrementAndGet();
    }

    /** The public key, from the certificate. */
    @Override
    public PublicKey publicKey() {
        return chain[0].getPublicKey();
    }

    /** The certificate chain: from the builder's certificates, else from the token. */
    public X509Certificate[] certificateChain() {
        return chain.clone();
    }

    /** "RSA", "EC" or "Ed25519". */
    public String keyAlgorithm() {
        return kind.jcaAlgorithm;
    }

    /** The PKCS#11 slot id of the token (as resolved when the engine was built). */
    public long slotId() {
        return slotId;
    }

    /** Operations performed on the token and delivered with a result. Any thread. */
    public long completedOperations() {
        return workers.completed();
    }

    /** Operations that failed on the token (or were still queued at close). Any thread. */
    public long failedOperations() {
        return workers.failed();
    }

    /** Operations refused because the queue was full. Any thread. */
    public long rejectedOperations() {
        return workers.rejected();
    }

    /** Operations waiting in the queue now. Any thread. */
    public int queuedOperations() {
        return workers.queued();
    }

    /** The number of worker threads still alive. Any thread. */
    public int liveWorkers() {
        return workers.liveWorkers();
    }

    /**
     * Token sessions of this engine open now: the login session the builder opened (kept so that the login lasts as
     * long as the engine) and at most one per worker that has worked; 0 after close. Any thread.
     */
    public int openSessions() {
        return access.openSessions();
    }

    /** Sessions opened so far: the login session, one per worker that has worked, one per reopen. Any thread. */
    public long sessionsOpened() {
        return access.sessionsOpened();
    }

    /** Operations that failed because the token dropped the session or went away (each reopens it). Any thread. */
    public long sessionFailures() {
        return sessionFailures.get();
    }

    /**
     * True once the token refused this engine's PIN: the engine no longer logs in and every operation fails with the
     * reason and what to do (fix the PIN file and rebuild the engine). Any thread.
     */
    public boolean loginRefused() {
        return access.loginRefusal() != null;
    }

    /** The handle of the session whose login lasts as long as the engine (tests). */
    long loginSessionHandle() {
        return loginSession.session();
    }

    /** Times the module was re-initialised after its device went away (shared by engines of the module). */
    public long moduleReinitializations() {
        return access.module().reinitializations();
    }

    @Override
    protected boolean offer(PendingOperation operation) {
        return workers.offer(operation);
    }

    /**
     * Stops the workers (an operation in progress on the token finishes first; waits up to the close timeout, 10
     * seconds by default), fails the operations still queued, closes the sessions, logs out of the token when no other
     * engine of this JVM is logged in to it, and releases the module (unless a worker is still busy in the token after
     * the wait: then its thread and the module stay until the token answers). Idempotent (a CAS). Blocks up to the
     * close timeout: call it from a thread that may block, never from an event loop (nor from one of the engine's
     * workers).
     */
    @Override
    public void close() {
        if (!markClosed()) {
            return;
        }
        boolean ended = workers.close(closeTimeoutMillis);
        TokenModule module = access.module();
        if (module.loggedOut(slotId)) { // this engine's login stops counting even when a worker is still busy
            logoutQuietly();
        }
        module.calls().lock();
        try {
            access.close(loginSession);
        } finally {
            module.calls().unlock();
        }
        access.wipePin();
        if (ended) {
            module.release(); // a worker still stuck in the token keeps the module loaded
        }
    }

    /**
     * Logs the token out through the login session, unless the module was re-initialised since it was opened: its
     * handle died with the old initialisation, and the number may now be another session's (C_Logout on it would log
     * out a session that is not this engine's); the re-initialisation ended that login anyway.
     */
    private void logoutQuietly() {
        TokenModule module = access.module();
        module.calls().lock();
        try {
            if (loginSession.generation() != module.generation()) {
                return;
            }
            module.cryptoki().logout(loginSession.session());
        } catch (org.xipki.pkcs11.wrapper.PKCS11Exception | RuntimeException e) {
            // Not logged in any more, or the token is gone: nothing to undo.
        } finally {
            module.calls().unlock();
        }
    }

    @Override
    public String toString() {
        return "Pkcs11Engine[" + name() + ", key " + access.keyDescription() + " on " + access.tokenDescription()
                + ", " + kind.jcaAlgorithm + ", module " + access.module().path() + ']';
    }

    /** Parses one DER certificate. */
    static X509Certificate certificate(byte[] der) throws CertificateException {
        return (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(new ByteArrayInputStream(der));
    }

    /** Signs a random challenge on the token with a builder-time session and verifies it with the certificate. */
    static boolean matches(TokenAccess access, TokenAccess.OpenSession open, TokenMechanisms.KeyKind kind,
                           PublicKey certKey)
            throws GeneralSecurityException {
        return KeyMatch.matches(new KeySigner() {
            @Override
            public PublicKey publicKey() {
                return certKey;
            }

            @Override
            public byte[] perform(KeyOperation operation) throws GeneralSecurityException {
                try {
                    return TokenMechanisms.perform(access.module().cryptoki(), open.session(), open.keyHandle(), kind,
                            operation);
                } catch (org.xipki.pkcs11.wrapper.PKCS11Exception e) {
                    throw new GeneralSecurityException(Pkcs11Errors.text(e), e);
                }
            }
        }, certKey);
    }
}
