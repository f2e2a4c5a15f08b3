package io.asyncctx.engine.pkcs11;

import java.lang.reflect.Field;
import java.security.Provider;

/**
 * Reads the token label and slot id of a configured SunPKCS11 provider. SunPKCS11 publishes neither (its config has no
 * token-label option, and the provider exposes no token information), so this reads the provider's own fields
 * ({@code SunPKCS11.slotID}, {@code SunPKCS11.token.tokenInfo.label}; unchanged from JDK 8 to 25) through
 * {@code sun.misc.Unsafe}, which needs no {@code --add-opens}. Used only when an engine is built, never on the
 * operation path.
 *
 * <p><b>Threading.</b> Stateless; any thread.
 */
final class TokenIntrospection {

    private static final Object UNSAFE;
    private static final Throwable UNAVAILABLE;

    static {
        Object unsafe = null;
        Throwable failure = null;
        try {
            Class<?> type = Class.forName("sun.misc.Unsafe");
            Field f = type.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            unsafe = f.get(null);
        } catch (ReflectiveOperationException | RuntimeException e) {
            failure = e;
        }
        UNSAFE = unsafe;
        UNAVAILABLE = failure;
    }

    private TokenIntrospection() {
    }

    /**
     * The label of the token in the provider's slot, blank padding removed.
     *
     * @throws IllegalStateException when this JDK's SunPKCS11 cannot be read; configure the token by slot instead
     */
    static String tokenLabel(Provider provider) {
        Object token = read(provider, "sun.security.pkcs11.SunPKCS11", "token");
        if (token == null) {
            throw new IllegalStateException("no token present in the slot of " + provider.getName());
        }
        Object tokenInfo = read(token, "sun.security.pkcs11.Token", "tokenInfo");
        char[] label = (char[]) read(tokenInfo, "sun.security.pkcs11.wrapper.CK_TOKEN_INFO", "label");
        return new String(label).trim();
    }

    /** The PKCS#11 slot id of the provider. */
    static long slotId(Provider provider) {
        try {
            Field f = Class.forName("sun.security.pkcs11.SunPKCS11").getDeclaredField("slotID");
            return (long) invoke("getLong", new Class<?>[]{Object.class, long.class}, provider, offset(f));
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw unreadable(e);
        }
    }

    private static Object read(Object target, String className, String fieldName) {
        try {
            Field f = Class.forName(className).getDeclaredField(fieldName);
            return invoke("getObjectVolatile", new Class<?>[]{Object.class, long.class}, target, offset(f));
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw unreadable(e);
        }
    }

    private static long offset(Field f) throws ReflectiveOperationException {
        return (long) invoke("objectFieldOffset", new Class<?>[]{Field.class}, f);
    }

    private static Object invoke(String method, Class<?>[] types, Object... args) throws ReflectiveOperationException {
        if (UNSAFE == null) {
            throw new IllegalStateException("sun.misc.Unsafe is not available", UNAVAILABLE);
        }
        return UNSAFE.getClass().getMethod(method, types).invoke(UNSAFE, args);
    }

    private static IllegalStateException unreadable(Exception e) {
        return new IllegalStateException("cannot read token labels from this JDK's SunPKCS11 provider; configure the "
                + "token by slot id (Pkcs11Engine.Builder.slot) instead of by label", e);
    }
}
