package io.asyncctx.engine.pkcs11;

import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.PKCS11Constants;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.PKCS11Module;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.Slot;
import org.xipki.pkcs11.wrapper.StaticLogger;
import org.xipki.pkcs11.wrapper.params.RSA_PKCS_PSS_PARAMS;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@link Cryptoki} on a real PKCS#11 module through {@code org.xipki:ipkcs11wrapper} (JNI): the production
 * implementation. It keeps the wrapper's {@link Slot} and {@link Session} objects by handle, forgotten at
 * {@link #initialize()} and {@link #finalizeModule()} (the handles die with the module's initialisation).
 *
 * <p><b>Threading.</b> Thread-safe (the maps are concurrent; the wrapper passes each call to the module, which was
 * initialised for multi-threaded use).
 */
final class WrapperCryptoki implements Cryptoki {

    static {
        StaticLogger.setLogger(new WrapperLogger());
    }

    private final PKCS11Module module;
    private final Map<Long, Slot> slots = new ConcurrentHashMap<>();
    private final Map<Long, Session> sessions = new ConcurrentHashMap<>();

    private WrapperCryptoki(PKCS11Module module) {
        this.module = module;
    }

    /**
     * Loads the module at {@code path} (not initialised yet).
     *
     * @throws IllegalArgumentException when there is no readable file at {@code path}
     * @throws IllegalStateException when the file is not a PKCS#11 module or cannot be loaded
     */
    static WrapperCryptoki load(Path path) {
        checkModuleFile(path);
        checkExportsGetFunctionList(path);
        try {
            return new WrapperCryptoki(PKCS11Module.getInstance(path.toString()));
        } catch (IOException | RuntimeException | UnsatisfiedLinkError e) {
            throw TokenModule.loadFailure(path, e);
        }
    }

    /** Refuses a module path with no readable file, with what to install. */
    static void checkModuleFile(Path modulePath) {
        if (!Files.isRegularFile(modulePath) || !Files.isReadable(modulePath)) {
            throw new IllegalArgumentException("PKCS#11 module library not found or not readable: " + modulePath
                    + "; install the token's PKCS#11 module (SoftHSM2: apt-get install softhsm2, module "
                    + "/usr/lib/softhsm/libsofthsm2.so; p11-kit client: apt-get install p11-kit-modules, module "
                    + "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so) or fix the module path");
        }
    }

    /** The wrapper's module (tests that look at the token beside the engine). */
    PKCS11Module pkcs11Module() {
        return module;
    }

    @Override
    public void initialize() throws PKCS11Exception {
        forget();
        module.initialize();
    }

    @Override
    public void finalizeModule() throws PKCS11Exception {
        forget();
        module.finalize(null);
    }

    private void forget() {
        sessions.clear();
        slots.clear();
    }

    @Override
    public List<TokenInfo> tokens() throws PKCS11Exception {
        List<TokenInfo> tokens = new ArrayList<>();
        for (Slot slot : module.getSlotList(true)) {
            org.xipki.pkcs11.wrapper.TokenInfo info;
            try {
                info = slot.getToken().getTokenInfo();
            } catch (PKCS11Exception e) {
                continue; // an unrecognised or uninitialised token: not ours
            }
            slots.put(slot.getSlotID(), slot);
            tokens.add(new TokenInfo(slot.getSlotID(), info.getLabel().strip(), info.getSerialNumber().strip(),
                    info.getManufacturerID().strip(), info.getModel().strip(), info.isTokenInitialized()));
        }
        return tokens;
    }

    @Override
    public long openSession(long slotId) throws PKCS11Exception {
        Slot slot = slots.get(slotId);
        if (slot == null) {
            tokens();
            slot = slots.get(slotId);
            if (slot == null) {
                throw new PKCS11Exception(PKCS11Constants.CKR_SLOT_ID_INVALID);
            }
        }
        Session session = slot.getToken().openSession(false);
        sessions.put(session.getSessionHandle(), session);
        return session.getSessionHandle();
    }

    private Session session(long handle) throws PKCS11Exception {
        Session s = sessions.get(handle);
        if (s == null) {
            throw new PKCS11Exception(PKCS11Constants.CKR_SESSION_HANDLE_INVALID);
        }
        return s;
    }

    @Override
    public void closeSession(long session) throws PKCS11Exception {
        Session s = sessions.remove(session);
        if (s == null) {
            throw new PKCS11Exception(PKCS11Constants.CKR_SESSION_HANDLE_INVALID);
        }
        s.closeSession();
    }

    @Override
    public void login(long session, char[] pin) throws PKCS11Exception {
        session(session).login(PKCS11Constants.CKU_USER, pin);
    }

    @Override
    public void logout(long session) throws PKCS11Exception {
        session(session).logout();
    }

    @Override
    public long[] findObjects(long session, long objectClass, String label, byte[] id, int max)
            throws PKCS11Exception {
        AttributeVector template = new AttributeVector().class_(objectClass);
        if (label != null) {
            template.label(label);
        }
        if (id != null) {
            template.id(id);
        }
        return session(session).findObjectsSingle(template, max);
    }

    @Override
    public String label(long session, long object) throws PKCS11Exception {
        return session(session).getAttrValues(object, PKCS11Constants.CKA_LABEL).label();
    }

    @Override
    public byte[] id(long session, long object) throws PKCS11Exception {
        return session(session).getAttrValues(object, PKCS11Constants.CKA_ID).id();
    }

    @Override
    public long keyType(long session, long object) throws PKCS11Exception {
        Long type = session(session).getAttrValues(object, PKCS11Constants.CKA_KEY_TYPE).keyType();
        return type == null ? -1 : type;
    }

    @Override
    public byte[] value(long session, long object) throws PKCS11Exception {
        return session(session).getAttrValues(object, PKCS11Constants.CKA_VALUE).value();
    }

    @Override
    public byte[] sign(long session, Mechanism mechanism, long key, byte[] data) throws PKCS11Exception {
        return session(session).signSingle(wrapper(mechanism), key, data);
    }

    @Override
    public byte[] decrypt(long session, Mechanism mechanism, long key, byte[] data) throws PKCS11Exception {
        return session(session).decryptSingle(wrapper(mechanism), key, data);
    }

    private static org.xipki.pkcs11.wrapper.Mechanism wrapper(Mechanism m) {
        if (m.code() == PKCS11Constants.CKM_RSA_PKCS_PSS) {
            return new org.xipki.pkcs11.wrapper.Mechanism(m.code(), new RSA_PKCS_PSS_PARAMS(m.pssHash(), m.pssMgf(),
                    m.pssSaltLength()));
        }
        return new org.xipki.pkcs11.wrapper.Mechanism(m.code());
    }

    /**
     * Refuses a file that does not name {@code C_GetFunctionList}, the one symbol every PKCS#11 module exports. The
     * wrapper's native {@code connect} crashes the JVM (SIGSEGV in {@code jni_ThrowNew}, seen with libz.so.1) when it
     * loads a shared library without that symbol, so a wrong module path must be caught before it gets there. The
     * check reads the file for the symbol's name (it is in the dynamic string table of any library that exports it).
     */
    private static void checkExportsGetFunctionList(Path path) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(path);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the PKCS#11 module " + path + ": " + e, e);
        }
        byte[] elf = {0x7f, 'E', 'L', 'F'};
        boolean isElf = bytes.length > 4 && java.util.Arrays.equals(bytes, 0, 4, elf, 0, 4);
        byte[] symbol = "C_GetFunctionList\0".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        if (!isElf || indexOf(bytes, symbol) < 0) {
            throw new IllegalStateException("cannot load the PKCS#11 module " + path + ": " + (isElf ? "it does not "
                    + "export C_GetFunctionList, so it is not a PKCS#11 module" : "it is not a shared library")
                    + "; give the token's PKCS#11 module (for SoftHSM2: /usr/lib/softhsm/libsofthsm2.so; for a remote "
                    + "token through p11-kit: /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so)");
        }
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    /** The wrapper's log lines go to {@code System.Logger} at DEBUG (its INFO banner is not for operators). */
    private static final class WrapperLogger implements org.xipki.pkcs11.wrapper.Logger {
        private static final System.Logger LOG = System.getLogger("io.asyncctx.engine.pkcs11.ipkcs11wrapper");

        private static void log(System.Logger.Level level, String format, Object... args) {
            if (LOG.isLoggable(level)) {
                LOG.log(level, () -> String.format(format.replace("{}", "%s"), args));
            }
        }

        @Override
        public void info(String format, Object... args) {
            log(System.Logger.Level.DEBUG, format, args);
        }

        @Override
        public void warn(String format, Object... args) {
            log(System.Logger.Level.DEBUG, format, args);
        }

        @Override
        public void error(String format, Object... args) {
            log(System.Logger.Level.DEBUG, format, args);
        }

        @Override
        public void debug(String format, Object... args) {
            log(System.Logger.Level.TRACE, format, args);
        }

        @Override
        public void trace(String format, Object... args) {
            log(System.Logger.Level.TRACE, format, args);
        }

        @Override
        public boolean isDebugEnabled() {
            return LOG.isLoggable(System.Logger.Level.TRACE);
        }

        @Override
        public boolean isInfoEnabled() {
            return LOG.isLoggable(System.Logger.Level.DEBUG);
        }

        @Override
        public boolean isWarnEnabled() {
            return LOG.isLoggable(System.Logger.Level.DEBUG);
        }

        @Override
        public boolean isTraceEnabled() {
            return LOG.isLoggable(System.Logger.Level.TRACE);
        }
    }
}
