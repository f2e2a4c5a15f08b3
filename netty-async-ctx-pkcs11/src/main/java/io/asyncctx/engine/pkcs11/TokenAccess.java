package io.asyncctx.engine.pkcs11;

import org.xipki.pkcs11.wrapper.PKCS11Constants;
import org.xipki.pkcs11.wrapper.PKCS11Exception;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An engine's way to its token and key: which slot (by token label, serial, manufacturer, model and/or slot id), which
 * private key (by label and/or CKA_ID), the user PIN, and how to open a logged-in session with the key's handle. Used
 * by the builder once and by every worker whenever its session must be (re)opened; the selection is resolved again
 * each time, since a restarted token (or p11-kit server) may hand out new slot ids and handles.
 *
 * <p>The PIN is kept in memory for re-logins after the token came back, and wiped by {@link #wipePin()} at close.
 *
 * <p><b>Threading.</b> Thread-safe: {@link #open()} is called by workers concurrently; the counters are atomic.
 */
final class TokenAccess {

    /** A logged-in session's handle, the key's handle in it, and the module generation it belongs to. */
    record OpenSession(long session, long keyHandle, long generation, long slotId) {
    }

    /** No token in the module's slot list matches the selection (the token was removed, or its server went away). */
    static final class TokenAbsentException extends IllegalStateException {
        private static final long serialVersionUID = 1L;

        TokenAbsentException(String message) {
            super(message);
        }
    }

    private final TokenModule module;
    private final String tokenLabel;
    private final String serial;
    private final String manufacturer;
    private final String model;
    private final Long slotId;
    private final String keyLabel;
    private final byte[] keyId;
    private final char[] pin;
    private final AtomicInteger openSessions = new AtomicInteger();
    private final AtomicLong sessionsOpened = new AtomicLong();
    private volatile String loginRefusal;

    /** The selection is the settings'; {@code pin} is kept (not copied) and wiped by {@link #wipePin()}. */
    TokenAccess(TokenModule module, Pkcs11Settings settings, char[] pin) {
        this.module = module;
        this.tokenLabel = settings.tokenLabel();
        this.serial = settings.serial();
        this.manufacturer = settings.manufacturer();
        this.model = settings.model();
        this.slotId = settings.slotId();
        this.keyLabel = settings.keyLabel();
        this.keyId = settings.keyId();
        this.pin = pin;
    }

    TokenModule module() {
        return module;
    }

    /** Sessions of this engine open now. */
    int openSessions() {
        return openSessions.get();
    }

    /** Sessions opened so far (the first per worker, then every reopen). */
    long sessionsOpened() {
        return sessionsOpened.get();
    }

    /** The slot id of the token that matches the selection. Call it holding the module's read lock. */
    long findSlot() throws PKCS11Exception {
        List<String> seen = new ArrayList<>();
        Long match = null;
        for (Cryptoki.TokenInfo info : module.cryptoki().tokens()) {
            if (!info.initialized()) {
                continue;
            }
            seen.add("'" + info.label() + "' (slot " + info.slotId() + ", serial " + info.serial() + ")");
            if ((tokenLabel == null || tokenLabel.equals(info.label()))
                    && (serial == null || serial.equals(info.serial()))
                    && (manufacturer == null || manufacturer.equals(info.manufacturer()))
                    && (model == null || model.equals(info.model()))
                    && (slotId == null || slotId == info.slotId())) {
                if (match != null) {
                    throw new IllegalStateException("more than one token matches " + tokenDescription() + " in "
                            + module.path() + ": " + seen + "; name the token by label, serial or slot id");
                }
                match = info.slotId();
            }
        }
        if (match == null) {
            throw new TokenAbsentException("no token matching " + tokenDescription() + " in PKCS#11 module "
                    + module.path() + "; tokens found: " + seen + "; fix the token label (or slot/serial), or "
                    + "initialize the token (softhsm2-util --init-token --free --label LABEL --so-pin SO_PIN --pin PIN)"
                    + (seen.isEmpty() && module.path().toString().contains("softhsm")
                    ? "; SoftHSM2 reads its token directory from the file SOFTHSM2_CONF names (default "
                    + "/etc/softhsm/softhsm2.conf): set SOFTHSM2_CONF to the configuration the token was made with"
                    : ""));
        }
        return match;
    }

    /**
     * Opens a session on the token, logs in (a login of another session of this process counts), and finds the key.
     *
     * @throws PKCS11Exception when the token fails; {@code CKR_PIN_INCORRECT} for a wrong PIN
     * @throws IllegalStateException when the token or key is not there (the message says what was found)
     */
    OpenSession open() throws PKCS11Exception {
        String refusal = loginRefusal;
        if (refusal != null) {
            throw new IllegalStateException(refusal);
        }
        long generation = module.generation();
        long slot = findSlot();
        Cryptoki c = module.cryptoki();
        long session = c.openSession(slot);
        openSessions.incrementAndGet();
        sessionsOpened.incrementAndGet();
        boolean success = false;
        try {
            try {
                c.login(session, pin);
            } catch (PKCS11Exception e) {
                if (e.getErrorCode() != PKCS11Constants.CKR_USER_ALREADY_LOGGED_IN) {
                    throw e;
                }
            }
            long key = findKey(session);
            success = true;
            return new OpenSession(session, key, generation, slot);
        } finally {
            if (!success) {
                close(new OpenSession(session, 0, generation, slot));
            }
        }
    }

    /** Closes a session; one of an older module generation is only forgotten (its handle died with it). */
    void close(OpenSession open) {
        openSessions.decrementAndGet();
        if (open.generation() != module.generation()) {
            return;
        }
        try {
            module.cryptoki().closeSession(open.session());
        } catch (PKCS11Exception | RuntimeException e) {
            // Gone already (the token was removed): nothing left to release.
        }
    }

    private long findKey(long session) throws PKCS11Exception {
        long[] found = module.cryptoki().findObjects(session, PKCS11Constants.CKO_PRIVATE_KEY, keyLabel, keyId, 2);
        if (found.length == 1) {
            return found[0];
        }
        if (found.length > 1) {
            throw new IllegalStateException("more than one private key matches " + keyDescription() + " on the token "
                    + tokenDescription() + "; name it by label and id");
        }
        throw new IllegalStateException("no private key " + keyDescription() + " on the token " + tokenDescription()
                + "; private keys found: " + listKeys(module.cryptoki(), session) + ". Import one with: softhsm2-util "
                + "--import key.pem --token TOKEN --label LABEL --id 01 --pin PIN (or generate it with pkcs11-tool "
                + "--keypairgen)");
    }

    private static String listKeys(Cryptoki c, long session) {
        try {
            List<String> keys = new ArrayList<>();
            for (long h : c.findObjects(session, PKCS11Constants.CKO_PRIVATE_KEY, null, null, 64)) {
                byte[] id = c.id(session, h);
                keys.add("'" + c.label(session, h) + "' id=" + (id == null ? "-" : HexFormat.of().formatHex(id)));
            }
            return keys.toString();
        } catch (PKCS11Exception | RuntimeException e) {
            return "(cannot list: " + Pkcs11Errors.text(e) + ")";
        }
    }

    /** The CKA_KEY_TYPE of the key, or -1. */
    long keyType(OpenSession open) throws PKCS11Exception {
        return module.cryptoki().keyType(open.session(), open.keyHandle());
    }

    /** The DER value of the certificate object with the key's CKA_ID (else its label) on the token, or null. */
    byte[] certificateOnToken(OpenSession open) throws PKCS11Exception {
        Cryptoki c = module.cryptoki();
        byte[] id = c.id(open.session(), open.keyHandle());
        String label = c.label(open.session(), open.keyHandle());
        long[] certs;
        if (id != null && id.length > 0) {
            certs = c.findObjects(open.session(), PKCS11Constants.CKO_CERTIFICATE, null, id, 1);
        } else if (label != null) {
            certs = c.findObjects(open.session(), PKCS11Constants.CKO_CERTIFICATE, label, null, 1);
        } else {
            return null;
        }
        if (certs.length == 0) {
            return null;
        }
        return c.value(open.session(), certs[0]);
    }

    /**
     * Stops every later login of this engine: the token refused the PIN ({@code CKR_PIN_INCORRECT},
     * {@code CKR_PIN_LOCKED}, ...), and logging in again with the same PIN would only count more failed tries against
     * it (a token locks its user PIN after a few). {@code message} says what to do; operations fail with it.
     */
    void refuseLogin(String message) {
        if (loginRefusal == null) {
            loginRefusal = message;
        }
    }

    /** Why this engine no longer logs in, or null while it may. */
    String loginRefusal() {
        return loginRefusal;
    }

    /** Zeroes the PIN. */
    void wipePin() {
        Arrays.fill(pin, '\0');
    }

    String tokenDescription() {
        List<String> parts = new ArrayList<>();
        if (tokenLabel != null) {
            parts.add("token='" + tokenLabel + "'");
        }
        if (serial != null) {
            parts.add("serial=" + serial);
        }
        if (manufacturer != null) {
            parts.add("manufacturer=" + manufacturer);
        }
        if (model != null) {
            parts.add("model=" + model);
        }
        if (slotId != null) {
            parts.add("slot-id=" + slotId);
        }
        return parts.isEmpty() ? "(any token)" : String.join(";", parts);
    }

    String keyDescription() {
        List<String> parts = new ArrayList<>();
        if (keyLabel != null) {
            parts.add("labelled '" + keyLabel + "'");
        }
        if (keyId != null) {
            parts.add("with id " + HexFormat.of().formatHex(keyId));
        }
        return String.join(" and ", parts);
    }
}
