package io.asyncctx.engine.pkcs11;

import io.asyncctx.engine.EngineWorkers;
import io.asyncctx.engine.KeyOperation;
import org.xipki.pkcs11.wrapper.PKCS11Constants;
import org.xipki.pkcs11.wrapper.PKCS11Exception;

import java.security.GeneralSecurityException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One worker thread's token session: opened (and logged in) at the worker's first operation, kept for every later one,
 * and reopened when the token invalidates it ({@code CKR_SESSION_HANDLE_INVALID}, {@code CKR_DEVICE_REMOVED}, a
 * p11-kit server that went away: then the module is re-initialised first). The operation that met the failure fails
 * with the token's reason; the next one runs on a new session. Closed when the worker ends.
 *
 * <p><b>When a session cannot be opened</b> the module is re-initialised only when that can help: the device went away
 * ({@link TokenModule#isModuleLost}) or the token left the slot list. Re-initialising is {@code C_Finalize}, which ends
 * every session of every engine of the module, so it is not done for a failure of this engine alone:
 * <ul>
 *   <li>the token refuses the PIN ({@code CKR_PIN_INCORRECT}, {@code CKR_PIN_LOCKED}, {@code CKR_PIN_EXPIRED}): the
 *   engine stops logging in, since each try with a wrong PIN counts towards locking the token's user PIN, and every
 *   later operation fails at once with what to do (fix the PIN file and rebuild the engine);</li>
 *   <li>{@code CKR_SESSION_COUNT}: the operation fails with the advice to lower {@code threads()} below the token's
 *   session limit; the next operation tries to open a session again;</li>
 *   <li>anything else (the key was deleted, a token error): the operation fails with the token's reason and the next
 *   one tries again.</li>
 * </ul>
 *
 * <p><b>Threading.</b> Confined to its worker thread; the counters it updates are shared atomics, the login refusal is
 * the engine's ({@link TokenAccess#refuseLogin}).
 */
final class TokenWorker implements EngineWorkers.Worker {

    private final TokenAccess access;
    private final TokenMechanisms.KeyKind kind;
    private final AtomicLong sessionFailures;
    private TokenAccess.OpenSession open;

    TokenWorker(TokenAccess access, TokenMechanisms.KeyKind kind, AtomicLong sessionFailures) {
        this.access = access;
        this.kind = kind;
        this.sessionFailures = sessionFailures;
    }

    @Override
    public byte[] perform(KeyOperation operation) throws GeneralSecurityException {
        String refused = access.loginRefusal();
        if (refused != null) {
            throw new GeneralSecurityException(refused); // no token call: the PIN is known to be refused
        }
        TokenModule module = access.module();
        module.calls().lock();
        try {
            if (open != null && open.generation() != module.generation()) {
                access.close(open); // the module was re-initialised: this handle is gone
                open = null;
            }
            if (open == null) {
                try {
                    open = access.open();
                } catch (PKCS11Exception | RuntimeException e) {
                    throw openFailed(e);
                }
            }
            try {
                return TokenMechanisms.perform(module.cryptoki(), open.session(), open.keyHandle(), kind, operation);
            } catch (PKCS11Exception e) {
                if (!TokenModule.isSessionLost(e.getErrorCode())) {
                    throw new GeneralSecurityException("the token " + access.tokenDescription() + " refused "
                            + operation + ": " + Pkcs11Errors.text(e), e);
                }
                access.close(open);
                open = null;
                throw lost(e, TokenModule.isModuleLost(e.getErrorCode()), "the token " + access.tokenDescription()
                        + " lost the session: ");
            }
        } finally {
            module.calls().unlock();
        }
    }

    /** The cause of an operation whose session could not be opened; see the class comment for what is done. */
    GeneralSecurityException openFailed(Exception e) {
        String refused = access.loginRefusal();
        if (refused != null) {
            return new GeneralSecurityException(refused, e); // another worker met the refusal first
        }
        String what = "cannot open a session on the token " + access.tokenDescription() + ": ";
        long code = Pkcs11Errors.code(e);
        if (TokenModule.isPinRefused(code)) {
            sessionFailures.incrementAndGet();
            String message = what + "the token refused the user PIN (" + Pkcs11Errors.text(e) + "); the engine "
                    + "no longer logs in, since every try with a wrong PIN counts towards locking it: "
                    + pinAdvice(code);
            access.refuseLogin(message);
            return new GeneralSecurityException(message, e);
        }
        if (code == PKCS11Constants.CKR_SESSION_COUNT) {
            sessionFailures.incrementAndGet();
            return new GeneralSecurityException(what + Pkcs11Errors.text(e) + ": the token has no session left for "
                    + "this worker; lower threads() below the token's session limit (each worker keeps one session, "
                    + "the engine one more for its login, and other applications of the token count too); the next "
                    + "operation tries again", e);
        }
        boolean gone = TokenModule.isModuleLost(code) || TokenModule.isTokenGone(code)
                || e instanceof TokenAccess.TokenAbsentException;
        return lost(e, gone, what);
    }

    private static String pinAdvice(long code) {
        String rebuild = "fix the PIN file and rebuild the engine (the PIN file, or the PIN environment variable, "
                + "must hold the token's current user PIN)";
        if (code == PKCS11Constants.CKR_PIN_LOCKED) {
            return "unlock the user PIN with the SO PIN (pkcs11-tool --login --login-type so --init-pin), then "
                    + rebuild;
        }
        if (code == PKCS11Constants.CKR_PIN_EXPIRED) {
            return "set a new user PIN (pkcs11-tool --login --change-pin), then " + rebuild;
        }
        return rebuild;
    }

    /** Counts the failure, re-initialises the module if the device went away, and builds the operation's cause. */
    private GeneralSecurityException lost(Exception e, boolean moduleLost, String what) {
        sessionFailures.incrementAndGet();
        TokenModule module = access.module();
        String next = "the next operation opens a new session";
        if (moduleLost) {
            long seen = module.generation();
            module.calls().unlock(); // the write lock of reinitialize() cannot be taken under a read lock
            try {
                module.reinitialize(seen);
                next = "the module was re-initialised; the next operation opens a new session";
            } catch (PKCS11Exception | RuntimeException again) {
                next = "the module cannot be re-initialised yet (" + Pkcs11Errors.text(again) + "); the next "
                        + "operation tries again";
            } finally {
                module.calls().lock();
            }
        }
        return new GeneralSecurityException(what + Pkcs11Errors.text(e) + "; " + next, e);
    }

    @Override
    public void close() {
        if (open != null) {
            access.module().calls().lock();
            try {
                access.close(open);
            } finally {
                access.module().calls().unlock();
            }
            open = null;
        }
    }
}
