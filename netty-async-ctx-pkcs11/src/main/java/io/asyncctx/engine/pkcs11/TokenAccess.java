package io.asyncctx.engine.pkcs11;

import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.PKCS11Constants;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.Slot;
import org.xipki.pkcs11.wrapper.TokenInfo;

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

    /** A logged-in session, the key's handle in it, and the module generation it belongs to. */
    record OpenSession(Session session, long keyHandle, long generation, long slotId) {
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

    TokenAccess(TokenModule module, String tokenLabel, String serial, String manufacturer, String model, Long slotId,
                String keyLabel, byte[] keyId, char[] pin) {
        this.module = module;
        this.tokenLabel = tokenLabel;
        this.serial = serial;
        this.manufacturer = manufacturer;
        this.model = model;
        this.slotId = slotId;
        this.keyLabel = keyLabel;
        this.keyId = keyId;
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

    /** The slot whose token matches the selection. Holds the module's read lock while it asks. */
    Slot findSlot() throws PKCS11Exception {
        List<String> seen = new ArrayList<>();
        Slot match = null;
        for (Slot slot : module.module().getSlotList(true)) {
            TokenInfo info;
            try {
                info = slot.getToken().getTokenInfo();
            } catch (PKCS11Exception e) {
                continue; // an unrecognised or uninitialised token: not ours
            }
            if (!info.isTokenInitialized()) {
                continue;
            }
            String label = info.getLabel().strip();
            seen.add("'" + label + "' (slot " + slot.getSlotID() + ", serial " + info.getSerialNumber().strip() + ")");
            if ((tokenLabel == null || tokenLabel.equals(label))
                    && (serial == null || serial.equals(info.getSerialNumber().strip()))
                    && (manufacturer == null || manufacturer.equals(info.getManufacturerID().strip()))
                    && (model == null || model.equals(info.getModel().strip()))
                    && (slotId == null || slotId == slot.getSlotID())) {
                if (match != null) {
                    throw new IllegalStateException("more than one token matches " + tokenDescription() + " in "
                            + module.path() + ": " + seen + "; name the token by label, serial or slot id");
                }
                match = slot;
            }
        }
        if (match == null) {
            throw new TokenAbsentException("no token matching " + tokenDescription() + " in PKCS#11 module "
                    + module.path() + "; tokens found: " + seen + "; fix the token label (or slot/serial), or "
                    + "initialize the token (softhsm2-util --init-token --free --label LABEL --so-pin SO_PIN --pin PIN)");
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
        Slot slot = findSlot();
        Session session = slot.getToken().openSession(false);
        openSessions.incrementAndGet();
        sessionsOpened.incrementAndGet();
        boolean success = false;
        try {
            try {
                session.login(PKCS11Constants.CKU_USER, pin);
            } catch (PKCS11Exception e) {
                if (e.getErrorCode() != PKCS11Constants.CKR_USER_ALREADY_LOGGED_IN) {
                    throw e;
                }
            }
            long key = findKey(session);
            success = true;
            return new OpenSession(session, key, generation, slot.getSlotID());
        } finally {
            if (!success) {
                close(new OpenSession(session, 0, generation, slot.getSlotID()));
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
            open.session().closeSession();
        } catch (PKCS11Exception | RuntimeException e) {
            // Gone already (the token was removed): nothing left to release.
        }
    }

    private long findKey(Session session) throws PKCS11Exception {
        AttributeVector template = new AttributeVector().class_(PKCS11Constants.CKO_PRIVATE_KEY);
        if (keyLabel != null) {
            template.label(keyLabel);
        }
        if (keyId != null) {
            template.id(keyId);
        }
        long[] found = session.findObjectsSingle(template, 2);
        if (found.length == 1) {
            return found[0];
        }
        if (found.length > 1) {
            throw new IllegalStateException("more than one private key matches " + keyDescription() + " on the token "
                    + tokenDescription() + "; name it by label and id");
        }
        throw new IllegalStateException("no private key " + keyDescription() + " on the token " + tokenDescription()
                + "; private keys found: " + listKeys(session) + ". Import one with: softhsm2-util --import key.pem "
                + "--token TOKEN --label LABEL --id 01 --pin PIN (or generate it with pkcs11-tool --keypairgen)");
    }

    private static String listKeys(Session session) {
        try {
            long[] all = session.findObjectsSingle(new AttributeVector().class_(PKCS11Constants.CKO_PRIVATE_KEY), 64);
            List<String> keys = new ArrayList<>();
            for (long h : all) {
                AttributeVector a = session.getAttrValues(h, PKCS11Constants.CKA_LABEL, PKCS11Constants.CKA_ID);
                byte[] id = a.id();
                keys.add("'" + a.label() + "' id=" + (id == null ? "-" : HexFormat.of().formatHex(id)));
            }
            return keys.toString();
        } catch (PKCS11Exception | RuntimeException e) {
            return "(cannot list: " + Pkcs11Errors.text(e) + ")";
        }
    }

    /** The CKA_KEY_TYPE of the key. */
    long keyType(OpenSession open) throws PKCS11Exception {
        Long type = open.session().getAttrValues(open.keyHandle(), PKCS11Constants.CKA_KEY_TYPE).keyType();
        return type == null ? -1 : type;
    }

    /** The DER value of the certificate object with the key's CKA_ID (else its label) on the token, or null. */
    byte[] certificateOnToken(OpenSession open) throws PKCS11Exception {
        AttributeVector keyAttrs = open.session().getAttrValues(open.keyHandle(), PKCS11Constants.CKA_ID,
                PKCS11Constants.CKA_LABEL);
        AttributeVector template = new AttributeVector().class_(PKCS11Constants.CKO_CERTIFICATE);
        if (keyAttrs.id() != null && keyAttrs.id().length > 0) {
            template.id(keyAttrs.id());
        } else if (keyAttrs.label() != null) {
            template.label(keyAttrs.label());
        } else {
            return null;
        }
        long[] certs = open.session().findObjectsSingle(template, 1);
        if (certs.length == 0) {
            return null;
        }
        return open.session().getAttrValues(certs[0], PKCS11Constants.CKA_VALUE).value();
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
