package io.asyncctx.engine.pkcs11;

import java.util.HashMap;
import java.util.Map;

/**
 * Counts the engines logged in to each token of this JVM. PKCS#11 login state belongs to the application and the
 * token, not to one session or one SunPKCS11 provider instance: a {@code C_Logout} by one engine would log out every
 * other engine of the same token and its private-key operations would fail. So an engine logs out only when it is the
 * last one of its token.
 *
 * <p><b>Threading.</b> Thread-safe (one lock, used only when engines are built and closed).
 */
final class TokenLogins {

    private static final Map<String, Integer> LOGINS = new HashMap<>();

    private TokenLogins() {
    }

    /** Records one more engine logged in to {@code tokenKey}. */
    static synchronized void acquire(String tokenKey) {
        LOGINS.merge(tokenKey, 1, Integer::sum);
    }

    /** Records one engine fewer; true when it was the last one and the token should be logged out. */
    static synchronized boolean release(String tokenKey) {
        Integer n = LOGINS.get(tokenKey);
        if (n == null || n <= 1) {
            LOGINS.remove(tokenKey);
            return true;
        }
        LOGINS.put(tokenKey, n - 1);
        return false;
    }

    /** Engines logged in to {@code tokenKey} now. */
    static synchronized int count(String tokenKey) {
        return LOGINS.getOrDefault(tokenKey, 0);
    }
}
