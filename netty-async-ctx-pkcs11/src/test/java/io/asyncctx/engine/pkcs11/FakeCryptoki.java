package io.asyncctx.engine.pkcs11;

import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import org.xipki.pkcs11.wrapper.PKCS11Constants;
import org.xipki.pkcs11.wrapper.PKCS11Exception;

import java.math.BigInteger;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.interfaces.ECPrivateKey;
import java.security.interfaces.RSAPrivateKey;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.crypto.Cipher;

/**
 * An in-memory PKCS#11 module with one token (slot {@link #SLOT}) holding JDK keys and their certificates, answering
 * the {@link Cryptoki} calls the way a module does (session handles numbered from 1 again after every
 * {@code C_Initialize}, one login per token shared by its sessions and ended when its last session closes), with
 * scripted faults: a session limit ({@code CKR_SESSION_COUNT}), a changed PIN ({@code CKR_PIN_INCORRECT}), a device
 * that went away ({@code CKR_DEVICE_ERROR} for every call until it is back and the module initialised again), a token
 * removed from its slot, a deleted key, a failure of the next signature, and signatures held at a {@link Gate}.
 *
 * <p><b>Threading.</b> Thread-safe: every call holds the fake's monitor, except a signature waiting at its gate; the
 * test thread scripts faults while workers call.
 */
final class FakeCryptoki implements Cryptoki {

    static final long SLOT = 7;
    static final String TOKEN = "fake-token";
    static final String PIN = "1234";

    private static final AtomicInteger MODULE_IDS = new AtomicInteger();

    /** A key pair and its certificate on the token. */
    record Key(String label, byte[] id, long keyType, KeyPair keyPair, X509Certificate certificate) {
    }

    /**
     * Holds signatures until released: {@link #awaitEntered} sees one arrive, {@link #release} lets them all go. A
     * held signature does not end when its thread is interrupted (a call into a token cannot be interrupted); it counts
     * the interrupt ({@link #awaitInterrupted}) and goes on waiting.
     */
    static final class Gate {
        private final CountDownLatch entered = new CountDownLatch(1);
        private final CountDownLatch interrupted = new CountDownLatch(1);
        private final CountDownLatch released = new CountDownLatch(1);

        boolean awaitEntered() throws InterruptedException {
            return entered.await(30, TimeUnit.SECONDS);
        }

        boolean awaitInterrupted() throws InterruptedException {
            return interrupted.await(30, TimeUnit.SECONDS);
        }

        void release() {
            released.countDown();
        }

        private void pass() {
            entered.countDown();
            boolean wasInterrupted = false;
            while (true) {
                try {
                    if (!released.await(60, TimeUnit.SECONDS)) {
                        throw new IllegalStateException("the test never released the gate");
                    }
                    break;
                } catch (InterruptedException e) {
                    wasInterrupted = true;
                    interrupted.countDown();
                }
            }
            if (wasInterrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private record Obj(long objectClass, String label, byte[] id, Key key) {
    }

    private final Path path = Path.of("/fake/pkcs11-" + MODULE_IDS.incrementAndGet() + ".so");
    private final Map<Long, Obj> objects = new LinkedHashMap<>();
    private final Map<Long, Long> sessions = new HashMap<>(); // handle -> slot
    private final List<Long> logouts = new ArrayList<>();
    private long nextObject = 100;
    private long nextSession = 1;
    private boolean initialized;
    private boolean loggedIn;
    private String pin = PIN;
    private int maxSessions = Integer.MAX_VALUE;
    private boolean deviceUp = true;
    private boolean deviceBroken;
    private boolean tokenPresent = true;
    private long failNextSign;
    private Gate gate;
    private int initializations;
    private int finalizations;
    private int logins;
    private int sessionsOpened;

    /** The path the engine's settings name: one per fake, so that engines of one fake share its module. */
    Path path() {
        return path;
    }

    /** The loader that hands this fake to {@link TokenModule}. */
    Cryptoki.Loader loader() {
        return p -> {
            if (!p.equals(path)) {
                throw new IllegalArgumentException("this fake is " + path + ", not " + p);
            }
            return this;
        };
    }

    /** Puts a new key pair with its self-signed certificate on the token. */
    synchronized Key addKey(String label, byte[] id, CertificateBuilder.Algorithm algorithm) throws Exception {
        X509Bundle bundle = new CertificateBuilder().subject("CN=" + label).algorithm(algorithm)
                .setIsCertificateAuthority(true).buildSelfSigned();
        long type = switch (algorithm) {
            case rsa2048, rsa3072, rsa4096 -> PKCS11Constants.CKK_RSA;
            case ecp256, ecp384 -> PKCS11Constants.CKK_EC;
            case ed25519 -> PKCS11Constants.CKK_EC_EDWARDS;
            default -> throw new IllegalArgumentException(algorithm.toString());
        };
        Key key = new Key(label, id.clone(), type, bundle.getKeyPair(), bundle.getCertificate());
        objects.put(nextObject++, new Obj(PKCS11Constants.CKO_PRIVATE_KEY, label, id.clone(), key));
        objects.put(nextObject++, new Obj(PKCS11Constants.CKO_CERTIFICATE, label, id.clone(), key));
        return key;
    }

    // ---- faults ----

    /** At most {@code n} sessions open at once; more answer {@code CKR_SESSION_COUNT}. */
    synchronized void maxSessions(int n) {
        maxSessions = n;
    }

    /** The token's user PIN changes (as with {@code pkcs11-tool --change-pin}); the current login stays. */
    synchronized void changePin(String newPin) {
        pin = newPin;
    }

    /**
     * The token restarts: every session ends, and with them the login (as after a p11-kit server or HSM restart that
     * the module noticed).
     */
    synchronized void restartToken() {
        sessions.clear();
        loggedIn = false;
    }

    /** The device goes away: every call answers {@code CKR_DEVICE_ERROR}, and initialising fails until it is back. */
    synchronized void deviceGone() {
        deviceUp = false;
        deviceBroken = true;
    }

    /** The device is back; calls keep failing until the module is finalised and initialised again. */
    synchronized void deviceBack() {
        deviceUp = true;
    }

    /** The token leaves its slot: its sessions end ({@code CKR_DEVICE_REMOVED}) and the slot list no longer has it. */
    synchronized void removeToken() {
        tokenPresent = false;
        sessions.clear();
        loggedIn = false;
    }

    /** The token is back in its slot (a module initialised again finds it). */
    synchronized void insertToken() {
        tokenPresent = true;
    }

    /** Deletes the private key labelled {@code label} (its certificate stays). */
    synchronized void deleteKey(String label) {
        objects.values().removeIf(o -> o.objectClass == PKCS11Constants.CKO_PRIVATE_KEY && label.equals(o.label));
    }

    /** The next signature answers {@code code}. */
    synchronized void failNextSign(long code) {
        failNextSign = code;
    }

    /** Holds every later signature at a new gate until the gate is released. */
    synchronized Gate holdSigns() {
        gate = new Gate();
        return gate;
    }

    // ---- what the token saw ----

    synchronized boolean isLoggedIn() {
        return loggedIn;
    }

    synchronized boolean isInitialized() {
        return initialized;
    }

    synchronized int openSessions() {
        return sessions.size();
    }

    synchronized int sessionsOpened() {
        return sessionsOpened;
    }

    /** C_Login calls, whatever their answer. */
    synchronized int logins() {
        return logins;
    }

    /** The session handles of successful C_Logout calls. */
    synchronized List<Long> logouts() {
        return List.copyOf(logouts);
    }

    synchronized int initializations() {
        return initializations;
    }

    synchronized int finalizations() {
        return finalizations;
    }

    // ---- Cryptoki ----

    @Override
    public synchronized void initialize() throws PKCS11Exception {
        if (initialized) {
            throw new PKCS11Exception(PKCS11Constants.CKR_CRYPTOKI_ALREADY_INITIALIZED);
        }
        if (!deviceUp) {
            throw new PKCS11Exception(PKCS11Constants.CKR_DEVICE_ERROR);
        }
        initialized = true;
        deviceBroken = false;
        initializations++;
        nextSession = 1;
    }

    @Override
    public synchronized void finalizeModule() throws PKCS11Exception {
        if (!initialized) {
            throw new PKCS11Exception(PKCS11Constants.CKR_CRYPTOKI_NOT_INITIALIZED);
        }
        initialized = false;
        finalizations++;
        sessions.clear();
        loggedIn = false;
    }

    private void checkModule() throws PKCS11Exception {
        if (!initialized) {
            throw new PKCS11Exception(PKCS11Constants.CKR_CRYPTOKI_NOT_INITIALIZED);
        }
        if (deviceBroken) {
            throw new PKCS11Exception(PKCS11Constants.CKR_DEVICE_ERROR);
        }
    }

    private void checkSession(long session) throws PKCS11Exception {
        checkModule();
        if (!sessions.containsKey(session)) {
            throw new PKCS11Exception(tokenPresent ? PKCS11Constants.CKR_SESSION_HANDLE_INVALID
                    : PKCS11Constants.CKR_DEVICE_REMOVED);
        }
    }

    @Override
    public synchronized List<TokenInfo> tokens() throws PKCS11Exception {
        checkModule();
        return tokenPresent ? List.of(new TokenInfo(SLOT, TOKEN, "0001", "fake", "FakeCryptoki", true)) : List.of();
    }

    @Override
    public synchronized long openSession(long slotId) throws PKCS11Exception {
        checkModule();
        if (slotId != SLOT) {
            throw new PKCS11Exception(PKCS11Constants.CKR_SLOT_ID_INVALID);
        }
        if (!tokenPresent) {
            throw new PKCS11Exception(PKCS11Constants.CKR_TOKEN_NOT_PRESENT);
        }
        if (sessions.size() >= maxSessions) {
            throw new PKCS11Exception(PKCS11Constants.CKR_SESSION_COUNT);
        }
        long handle = nextSession++;
        sessions.put(handle, slotId);
        sessionsOpened++;
        return handle;
    }

    @Override
    public synchronized void closeSession(long session) throws PKCS11Exception {
        checkSession(session);
        sessions.remove(session);
        if (sessions.isEmpty()) {
            loggedIn = false; // a login ends with the token's last session
        }
    }

    @Override
    public synchronized void login(long session, char[] pin) throws PKCS11Exception {
        checkSession(session);
        logins++;
        if (loggedIn) {
            throw new PKCS11Exception(PKCS11Constants.CKR_USER_ALREADY_LOGGED_IN);
        }
        if (!this.pin.equals(new String(pin))) {
            throw new PKCS11Exception(PKCS11Constants.CKR_PIN_INCORRECT);
        }
        loggedIn = true;
    }

    @Override
    public synchronized void logout(long session) throws PKCS11Exception {
        checkSession(session);
        if (!loggedIn) {
            throw new PKCS11Exception(PKCS11Constants.CKR_USER_NOT_LOGGED_IN);
        }
        loggedIn = false;
        logouts.add(session);
    }

    @Override
    public synchronized long[] findObjects(long session, long objectClass, String label, byte[] id, int max)
            throws PKCS11Exception {
        checkSession(session);
        if (objectClass == PKCS11Constants.CKO_PRIVATE_KEY && !loggedIn) {
            return new long[0]; // private objects are invisible without a login
        }
        return objects.entrySet().stream()
                .filter(e -> e.getValue().objectClass == objectClass)
                .filter(e -> label == null || label.equals(e.getValue().label))
                .filter(e -> id == null || Arrays.equals(id, e.getValue().id))
                .limit(max).mapToLong(Map.Entry::getKey).toArray();
    }

    private Obj object(long session, long object) throws PKCS11Exception {
        checkSession(session);
        Obj o = objects.get(object);
        if (o == null) {
            throw new PKCS11Exception(PKCS11Constants.CKR_OBJECT_HANDLE_INVALID);
        }
        return o;
    }

    @Override
    public synchronized String label(long session, long object) throws PKCS11Exception {
        return object(session, object).label;
    }

    @Override
    public synchronized byte[] id(long session, long object) throws PKCS11Exception {
        return object(session, object).id.clone();
    }

    @Override
    public synchronized long keyType(long session, long object) throws PKCS11Exception {
        Obj o = object(session, object);
        return o.objectClass == PKCS11Constants.CKO_PRIVATE_KEY ? o.key.keyType() : -1;
    }

    @Override
    public synchronized byte[] value(long session, long object) throws PKCS11Exception {
        Obj o = object(session, object);
        if (o.objectClass != PKCS11Constants.CKO_CERTIFICATE) {
            throw new PKCS11Exception(PKCS11Constants.CKR_ATTRIBUTE_SENSITIVE);
        }
        try {
            return o.key.certificate().getEncoded();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public byte[] sign(long session, Mechanism mechanism, long key, byte[] data) throws PKCS11Exception {
        PrivateKey privateKey;
        Gate held;
        synchronized (this) {
            privateKey = usableKey(session, key);
            held = gate;
            long fail = failNextSign;
            failNextSign = 0;
            if (fail != 0) {
                throw new PKCS11Exception(fail);
            }
        }
        if (held != null) {
            held.pass();
        }
        try {
            return sign(privateKey, mechanism, data);
        } catch (GeneralSecurityException e) {
            throw new PKCS11Exception(PKCS11Constants.CKR_FUNCTION_FAILED, e.toString());
        }
    }

    @Override
    public byte[] decrypt(long session, Mechanism mechanism, long key, byte[] data) throws PKCS11Exception {
        PrivateKey privateKey;
        synchronized (this) {
            privateKey = usableKey(session, key);
        }
        if (mechanism.code() != PKCS11Constants.CKM_RSA_X_509 || !(privateKey instanceof RSAPrivateKey)) {
            throw new PKCS11Exception(PKCS11Constants.CKR_MECHANISM_INVALID);
        }
        try {
            Cipher c = Cipher.getInstance("RSA/ECB/NoPadding");
            c.init(Cipher.DECRYPT_MODE, privateKey);
            return c.doFinal(data);
        } catch (GeneralSecurityException e) {
            throw new PKCS11Exception(PKCS11Constants.CKR_FUNCTION_FAILED, e.toString());
        }
    }

    private PrivateKey usableKey(long session, long key) throws PKCS11Exception {
        Obj o = object(session, key);
        if (o.objectClass != PKCS11Constants.CKO_PRIVATE_KEY) {
            throw new PKCS11Exception(PKCS11Constants.CKR_KEY_HANDLE_INVALID);
        }
        if (!loggedIn) {
            throw new PKCS11Exception(PKCS11Constants.CKR_USER_NOT_LOGGED_IN);
        }
        return o.key.keyPair().getPrivate();
    }

    /** The token's side of each mechanism: PKCS#1 over a DigestInfo, PSS over a hash, raw r||s ECDSA, Ed25519. */
    private static byte[] sign(PrivateKey key, Mechanism m, byte[] data) throws GeneralSecurityException,
            PKCS11Exception {
        long code = m.code();
        if (code == PKCS11Constants.CKM_RSA_PKCS && key instanceof RSAPrivateKey) {
            Signature s = Signature.getInstance("NONEwithRSA");
            s.initSign(key);
            s.update(data);
            return s.sign();
        }
        if (code == PKCS11Constants.CKM_RSA_PKCS_PSS && key instanceof RSAPrivateKey rsa) {
            return pss(rsa, m, data);
        }
        if (code == PKCS11Constants.CKM_ECDSA && key instanceof ECPrivateKey ec) {
            Signature s = Signature.getInstance("NONEwithECDSA");
            s.initSign(key);
            s.update(data);
            return derToRaw(s.sign(), (ec.getParams().getCurve().getField().getFieldSize() + 7) / 8);
        }
        if (code == PKCS11Constants.CKM_EDDSA && key.getAlgorithm().startsWith("Ed")) {
            Signature s = Signature.getInstance("Ed25519");
            s.initSign(key);
            s.update(data);
            return s.sign();
        }
        throw new PKCS11Exception(PKCS11Constants.CKR_MECHANISM_INVALID);
    }

    /** EMSA-PSS (RFC 8017 9.1.1) of a hash with MGF1 of the same hash, then the raw RSA private-key operation. */
    private static byte[] pss(RSAPrivateKey key, Mechanism m, byte[] mHash) throws GeneralSecurityException,
            PKCS11Exception {
        String digest;
        if (m.pssHash() == PKCS11Constants.CKM_SHA256 && m.pssMgf() == PKCS11Constants.CKG_MGF1_SHA256) {
            digest = "SHA-256";
        } else if (m.pssHash() == PKCS11Constants.CKM_SHA384 && m.pssMgf() == PKCS11Constants.CKG_MGF1_SHA384) {
            digest = "SHA-384";
        } else if (m.pssHash() == PKCS11Constants.CKM_SHA512 && m.pssMgf() == PKCS11Constants.CKG_MGF1_SHA512) {
            digest = "SHA-512";
        } else {
            throw new PKCS11Exception(PKCS11Constants.CKR_MECHANISM_PARAM_INVALID);
        }
        MessageDigest md = MessageDigest.getInstance(digest);
        int hLen = md.getDigestLength();
        if (mHash.length != hLen) {
            throw new PKCS11Exception(PKCS11Constants.CKR_DATA_LEN_RANGE);
        }
        int emBits = key.getModulus().bitLength() - 1;
        int emLen = (emBits + 7) / 8;
        byte[] salt = new byte[m.pssSaltLength()];
        new SecureRandom().nextBytes(salt);
        md.update(new byte[8]);
        md.update(mHash);
        byte[] h = md.digest(salt);
        byte[] db = new byte[emLen - hLen - 1];
        db[db.length - salt.length - 1] = 1;
        System.arraycopy(salt, 0, db, db.length - salt.length, salt.length);
        byte[] mask = mgf1(digest, h, db.length);
        for (int i = 0; i < db.length; i++) {
            db[i] ^= mask[i];
        }
        db[0] &= (byte) (0xff >>> (8 * emLen - emBits));
        byte[] em = new byte[emLen];
        System.arraycopy(db, 0, em, 0, db.length);
        System.arraycopy(h, 0, em, db.length, hLen);
        em[emLen - 1] = (byte) 0xbc;
        BigInteger s = new BigInteger(1, em).modPow(key.getPrivateExponent(), key.getModulus());
        return fixedLength(s, (key.getModulus().bitLength() + 7) / 8);
    }

    private static byte[] mgf1(String digest, byte[] seed, int length) throws GeneralSecurityException {
        MessageDigest md = MessageDigest.getInstance(digest);
        byte[] out = new byte[length];
        int done = 0;
        for (int counter = 0; done < length; counter++) {
            md.update(seed);
            md.update(new byte[]{(byte) (counter >>> 24), (byte) (counter >>> 16), (byte) (counter >>> 8),
                (byte) counter});
            byte[] block = md.digest();
            int n = Math.min(block.length, length - done);
            System.arraycopy(block, 0, out, done, n);
            done += n;
        }
        return out;
    }

    /** DER SEQUENCE { INTEGER r, INTEGER s } as the r||s a token returns, each {@code half} bytes. */
    private static byte[] derToRaw(byte[] der, int half) {
        int i = 2;
        if ((der[1] & 0x80) != 0) {
            i += der[1] & 0x7f;
        }
        int rLen = der[i + 1];
        BigInteger r = new BigInteger(1, Arrays.copyOfRange(der, i + 2, i + 2 + rLen));
        i += 2 + rLen;
        int sLen = der[i + 1];
        BigInteger s = new BigInteger(1, Arrays.copyOfRange(der, i + 2, i + 2 + sLen));
        byte[] raw = new byte[2 * half];
        System.arraycopy(fixedLength(r, half), 0, raw, 0, half);
        System.arraycopy(fixedLength(s, half), 0, raw, half, half);
        return raw;
    }

    private static byte[] fixedLength(BigInteger v, int length) {
        byte[] b = v.toByteArray();
        if (b.length == length) {
            return b;
        }
        byte[] out = new byte[length];
        if (b.length > length) {
            System.arraycopy(b, b.length - length, out, 0, length);
        } else {
            System.arraycopy(b, 0, out, length - b.length, b.length);
        }
        return out;
    }
}
