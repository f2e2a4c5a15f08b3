package io.asyncctx.engine.pkcs11;

import org.xipki.pkcs11.wrapper.PKCS11Constants;
import org.xipki.pkcs11.wrapper.PKCS11Exception;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * One PKCS#11 module (shared library) loaded and initialised once per JVM and shared by every engine that names the
 * same path: a module answers {@code CKR_CRYPTOKI_ALREADY_INITIALIZED} to a second {@code C_Initialize}, and one
 * engine's {@code C_Finalize} would end every other engine's sessions. Counted: finalised when the last engine
 * releases it.
 *
 * <p><b>Recovery.</b> A module whose device went away (a p11-kit server that died: every call then answers
 * {@code CKR_DEVICE_ERROR} until the module is finalised and initialised again) is re-initialised by
 * {@link #reinitialize(long)}, once per failure however many workers saw it; the {@link #generation()} moves on and
 * every session of an older generation is dropped (its handle is gone with the old initialisation) and reopened.
 * Token calls hold the read lock ({@link #calls()}), re-initialisation the write lock.
 *
 * <p>The module's C API is a {@link Cryptoki}: {@link WrapperCryptoki} for a shared library, a fake in the tests.
 *
 * <p><b>Threading.</b> Thread-safe.
 */
final class TokenModule {

    private static final Map<Path, TokenModule> MODULES = new HashMap<>();

    private final Path path;
    private final Cryptoki module;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final Map<Long, Integer> logins = new HashMap<>();
    private int refs;
    private volatile long generation;
    private volatile long reinitializations;

    private TokenModule(Path path, Cryptoki module) {
        this.path = path;
        this.module = module;
    }

    /**
     * The PKCS#11 module at {@code path} (ipkcs11wrapper), loaded and initialised on first use; release it with
     * {@link #release()}.
     *
     * @throws IllegalArgumentException when there is no readable file at {@code path}
     * @throws IllegalStateException when it cannot be loaded or initialised (the message says what to do)
     */
    static TokenModule acquire(Path path) {
        return acquire(path, WrapperCryptoki::load);
    }

    /**
     * The module at {@code path}, loaded by {@code loader} and initialised on first use (later calls for the same path
     * share it, whatever their loader); release it with {@link #release()}.
     *
     * @throws IllegalStateException when it cannot be loaded or initialised (the message says what to do)
     */
    static TokenModule acquire(Path path, Cryptoki.Loader loader) {
        Path key = path.toAbsolutePath().normalize();
        synchronized (MODULES) {
            TokenModule m = MODULES.get(key);
            if (m == null) {
                Cryptoki loaded = loader.load(key);
                try {
                    loaded.initialize();
                } catch (PKCS11Exception | RuntimeException e) {
                    throw loadFailure(key, e);
                }
                m = new TokenModule(key, loaded);
                MODULES.put(key, m);
            }
            m.refs++;
            return m;
        }
    }

    /** The failure to load or initialise the module at {@code path}, with what to check. */
    static IllegalStateException loadFailure(Path path, Throwable e) {
        return new IllegalStateException("cannot load the PKCS#11 module " + path + ": " + Pkcs11Errors.text(e)
                + "; check that it is a PKCS#11 module (for SoftHSM2: /usr/lib/softhsm/libsofthsm2.so; "
                + "for a remote token through p11-kit: /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so "
                + "with P11_KIT_SERVER_ADDRESS set)", e);
    }

    /** Releases one use; the last one finalises the module. */
    void release() {
        synchronized (MODULES) {
            if (--refs > 0) {
                return;
            }
            MODULES.remove(path, this);
        }
        lock.writeLock().lock();
        try {
            module.finalizeModule();
        } catch (PKCS11Exception | RuntimeException e) {
            // The device may be gone already; nothing else to release.
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** The module's C API: call it holding {@link #calls()}. */
    Cryptoki cryptoki() {
        return module;
    }

    Path path() {
        return path;
    }

    /** Held (read) around every token call so that a re-initialisation waits for calls in progress. */
    ReentrantReadWriteLock.ReadLock calls() {
        return lock.readLock();
    }

    /** Moves on at every re-initialisation: sessions opened in an older generation are gone. */
    long generation() {
        return generation;
    }

    /** Re-initialisations so far. */
    long reinitializations() {
        return reinitializations;
    }

    /**
     * Finalises and initialises the module again, unless another thread already did since {@code seenGeneration}.
     *
     * @throws PKCS11Exception when the module cannot be initialised (the device is still away)
     */
    void reinitialize(long seenGeneration) throws PKCS11Exception {
        lock.writeLock().lock();
        try {
            if (generation != seenGeneration) {
                return;
            }
            try {
                module.finalizeModule();
            } catch (PKCS11Exception e) {
                // Already finalised by a failed attempt before: initialise below.
            }
            generation++;
            reinitializations++;
            module.initialize();
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Records one more engine logged in to {@code slotId}. */
    synchronized void loggedIn(long slotId) {
        logins.merge(slotId, 1, Integer::sum);
    }

    /** Records one engine fewer; true when it was the last one of the slot, which then logs out. */
    synchronized boolean loggedOut(long slotId) {
        Integer n = logins.get(slotId);
        if (n == null || n <= 1) {
            logins.remove(slotId);
            return true;
        }
        logins.put(slotId, n - 1);
        return false;
    }

    /** True for the codes after which the session (or the whole module) must be reopened. */
    static boolean isSessionLost(long code) {
        return code == PKCS11Constants.CKR_SESSION_HANDLE_INVALID || code == PKCS11Constants.CKR_SESSION_CLOSED
                || code == PKCS11Constants.CKR_DEVICE_REMOVED || code == PKCS11Constants.CKR_DEVICE_ERROR
                || code == PKCS11Constants.CKR_TOKEN_NOT_PRESENT || code == PKCS11Constants.CKR_USER_NOT_LOGGED_IN
                || code == PKCS11Constants.CKR_CRYPTOKI_NOT_INITIALIZED
                || code == PKCS11Constants.CKR_OBJECT_HANDLE_INVALID || code == PKCS11Constants.CKR_KEY_HANDLE_INVALID;
    }

    /** True for the codes after which only a re-initialisation of the module helps. */
    static boolean isModuleLost(long code) {
        return code == PKCS11Constants.CKR_DEVICE_ERROR || code == PKCS11Constants.CKR_DEVICE_REMOVED
                || code == PKCS11Constants.CKR_CRYPTOKI_NOT_INITIALIZED;
    }

    /** True for the codes that say the token is no longer in its slot: a re-initialisation may find it again. */
    static boolean isTokenGone(long code) {
        return code == PKCS11Constants.CKR_TOKEN_NOT_PRESENT || code == PKCS11Constants.CKR_SLOT_ID_INVALID;
    }

    /** True for the codes by which the token refuses the user PIN: logging in again with it cannot succeed. */
    static boolean isPinRefused(long code) {
        return code == PKCS11Constants.CKR_PIN_INCORRECT || code == PKCS11Constants.CKR_PIN_LOCKED
                || code == PKCS11Constants.CKR_PIN_EXPIRED || code == PKCS11Constants.CKR_PIN_INVALID
                || code == PKCS11Constants.CKR_PIN_LEN_RANGE;
    }
}
