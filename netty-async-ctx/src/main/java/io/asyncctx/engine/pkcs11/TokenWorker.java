package io.asyncctx.engine.pkcs11;

import io.asyncctx.engine.EngineWorkers;
import io.asyncctx.engine.KeyOperation;
import org.xipki.pkcs11.wrapper.PKCS11Exception;

import java.security.GeneralSecurityException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One worker thread's token session: opened (and logged in) at the worker's first operation, kept for every later one,
 * and reopened when the token invalidates it ({@code CKR_SESSION_HANDLE_INVALID}, {@code CKR_DEVICE_REMOVED}, a
 * p11-kit server that went away: then the module is re-initialised first). The operation that met the failure fails
 * with the token's reason; the next one runs on a new session. Closed when the worker ends.
 *
 * <p><b>Threading.</b> Confined to its worker thread; the counters it updates are shared atomics.
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
                    // The token is unreachable or gone from the slot list: only a re-initialisation can find it again.
                    throw lost(e, true, "cannot open a session on the token " + access.tokenDescription() + ": ");
                }
            }
            try {
                return TokenMechanisms.perform(open.session(), open.keyHandle(), kind, operation);
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
