package io.asyncctx.engine.pkcs11;

import org.xipki.pkcs11.wrapper.PKCS11Exception;

import java.nio.file.Path;
import java.util.List;

/**
 * <p><b>Threading.</b> Implementations are thread-safe the way a module initialised for multi-threaded use is: calls on
 * different sessions may run concurrently; the engine uses one session from one thread at a time.
 * {@link #initialize()} and {@link #finalizeModule()} are called by {@link TokenModule} under its write lock, so no
 * other call is in progress.
 *
 * <p>The part of the PKCS#11 C API (Cryptoki) that the engine calls, one method for one C function, with the module's
 * own handle numbers ({@code CK_SLOT_ID}, {@code CK_SESSION_HANDLE}, {@code CK_OBJECT_HANDLE}) and its return values
 * ({@link PKCS11Exception#getErrorCode()}, {@code CKR_*}). Everything the engine decides (which slot, when to log in,
 * when a session or the whole module is lost, what to tell the operator) is above this line and testable without a
 * token: {@link WrapperCryptoki} is the production implementation (ipkcs11wrapper, JNI), {@code FakeCryptoki} in the
 * test sources an in-memory token with JDK keys and scripted faults.
 */
interface Cryptoki {

    /** Loads (without initialising) the module at a path. */
    @FunctionalInterface
    interface Loader {
        /**
         * @throws IllegalArgumentException when there is no readable file at {@code path} (the message says what to do)
         * @throws IllegalStateException when the file is not a PKCS#11 module (the message says what to do)
         */
        Cryptoki load(Path path);
    }

    /** {@code C_GetTokenInfo} of a slot with a token present (strings stripped of their blank padding). */
    record TokenInfo(long slotId, String label, String serial, String manufacturer, String model,
                     boolean initialized) {
    }

    /**
     * A mechanism: its {@code CKM_*} code and, for {@code CKM_RSA_PKCS_PSS}, its parameters (the hash, the MGF and the
     * salt length); 0 for the others.
     */
    record Mechanism(long code, long pssHash, long pssMgf, int pssSaltLength) {
        static Mechanism of(long code) {
            return new Mechanism(code, 0, 0, 0);
        }
    }

    /** {@code C_Initialize} (with OS locking, multi-threaded). */
    void initialize() throws PKCS11Exception;

    /** {@code C_Finalize}: every session of the module ends with it. */
    void finalizeModule() throws PKCS11Exception;

    /**
     * {@code C_GetSlotList(CK_TRUE)} and {@code C_GetTokenInfo} of each slot; a token whose information cannot be read
     * is left out (not ours).
     */
    List<TokenInfo> tokens() throws PKCS11Exception;

    /** {@code C_OpenSession}: a read-only serial session; returns its handle. */
    long openSession(long slotId) throws PKCS11Exception;

    /** {@code C_CloseSession}. */
    void closeSession(long session) throws PKCS11Exception;

    /** {@code C_Login} as {@code CKU_USER}; {@code CKR_USER_ALREADY_LOGGED_IN} when a session of this process did. */
    void login(long session, char[] pin) throws PKCS11Exception;

    /** {@code C_Logout}: ends the login of every session of the token (a login is per token, not per session). */
    void logout(long session) throws PKCS11Exception;

    /**
     * {@code C_FindObjectsInit} / {@code C_FindObjects} / {@code C_FindObjectsFinal}: up to {@code max} objects of
     * {@code objectClass} ({@code CKO_*}) with the label and id given (null: any).
     */
    long[] findObjects(long session, long objectClass, String label, byte[] id, int max) throws PKCS11Exception;

    /** {@code CKA_LABEL} of an object, or null. */
    String label(long session, long object) throws PKCS11Exception;

    /** {@code CKA_ID} of an object, or null. */
    byte[] id(long session, long object) throws PKCS11Exception;

    /** {@code CKA_KEY_TYPE} ({@code CKK_*}) of a key, or -1 when it has none. */
    long keyType(long session, long object) throws PKCS11Exception;

    /** {@code CKA_VALUE} of an object (the DER of a certificate), or null. */
    byte[] value(long session, long object) throws PKCS11Exception;

    /** {@code C_SignInit} and {@code C_Sign}. */
    byte[] sign(long session, Mechanism mechanism, long key, byte[] data) throws PKCS11Exception;

    /** {@code C_DecryptInit} and {@code C_Decrypt}. */
    byte[] decrypt(long session, Mechanism mechanism, long key, byte[] data) throws PKCS11Exception;
}
