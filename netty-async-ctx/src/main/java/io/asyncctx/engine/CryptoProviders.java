package io.asyncctx.engine;

import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.security.Key;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Provider;
import java.util.Objects;

/**
 * Threading: thread-safe: a static utility. ACCP is loaded once, on first use, by whichever thread asks
 * first.
 *
 * <p>Chooses the JCA provider that the software engine signs with: Amazon Corretto Crypto Provider (AWS-LC, several
 * times faster than the JDK's own providers) when it loads, else the JDK. ACCP is never installed globally
 * ({@code Security.insertProviderAt} is not called); its {@link Provider} object is passed explicitly to
 * {@code Signature.getInstance(name, provider)}, so the rest of the JVM is not affected.
 */
public final class CryptoProviders {

    /** Threading: an enum, any thread. Which provider to use. */
    public enum Choice {
        /** Amazon Corretto Crypto Provider; fails when it cannot be loaded on this platform. */
        ACCP,
        /** The JDK's providers in their preference order. */
        JDK,
        /** ACCP when it loads, else the JDK (with a logged note). */
        AUTO
    }

    static final String ACCP_CLASS = "com.amazon.corretto.crypto.provider.AmazonCorrettoCryptoProvider";

    private static final Logger LOGGER = System.getLogger(CryptoProviders.class.getName());

    private CryptoProviders() {
    }

    /** Loads ACCP once; holds the provider or the reason it is unavailable. */
    private static final class AccpHolder {
        static final Provider PROVIDER;
        static final Throwable ERROR;

        static {
            Provider provider = null;
            Throwable error = null;
            try {
                Class<?> type = Class.forName(ACCP_CLASS, true, CryptoProviders.class.getClassLoader());
                Provider candidate = (Provider) type.getField("INSTANCE").get(null);
                Object loadingError = type.getMethod("getLoadingError").invoke(candidate);
                if (loadingError instanceof Throwable t) {
                    error = t;
                } else {
                    type.getMethod("assertHealthy").invoke(candidate);
                    provider = candidate;
                }
            } catch (java.lang.reflect.InvocationTargetException e) {
                error = e.getCause();
            } catch (ReflectiveOperationException | LinkageError | ClassCastException e) {
                error = e;
            }
            PROVIDER = provider;
            ERROR = error;
        }
    }

    /** True when Amazon Corretto Crypto Provider is on the class path and healthy on this platform. */
    public static boolean isAccpAvailable() {
        return AccpHolder.PROVIDER != null;
    }

    /**
     * Amazon Corretto Crypto Provider, not installed globally.
     *
     * @throws IllegalStateException when it cannot be loaded (not on the class path, or its native library does not
     *     load on this platform); the message says why and what to do
     */
    public static Provider accp() {
        Provider provider = AccpHolder.PROVIDER;
        if (provider == null) {
            Throwable error = AccpHolder.ERROR;
            throw new IllegalStateException("Amazon Corretto Crypto Provider is not available ("
                    + describe(error) + "); add software.amazon.cryptools:AmazonCorrettoCryptoProvider with the "
                    + "classifier of this platform (linux-x86_64 or linux-aarch_64), or choose Choice.JDK or AUTO",
                    error);
        }
        return provider;
    }

    /**
     * The provider for {@code choice}.
     *
     * @return the ACCP provider, or null for the JDK's preference order
     * @throws IllegalStateException when {@code choice} is ACCP and ACCP cannot be loaded
     */
    public static Provider select(Choice choice) {
        Objects.requireNonNull(choice, "choice");
        switch (choice) {
            case ACCP:
                return accp();
            case JDK:
                return null;
            default:
                if (isAccpAvailable()) {
                    return AccpHolder.PROVIDER;
                }
                LOGGER.log(Level.INFO, "Amazon Corretto Crypto Provider is not available ({0}); signing with the "
                        + "JDK's providers, which are several times slower", describe(AccpHolder.ERROR));
                return null;
        }
    }

    /** True when {@code provider} is ACCP. */
    static boolean isAccp(Provider provider) {
        return provider != null && provider.getClass().getName().equals(ACCP_CLASS);
    }

    /**
     * Converts {@code key} once into {@code provider}'s own key type when the provider has a key factory for it, so
     * that each signature does not convert it again (ACCP spends about 110 us converting a JDK RSA key for every new
     * Signature object). Best effort: returns {@code key} unchanged when it cannot.
     */
    static PrivateKey translate(PrivateKey key, Provider provider) {
        if (provider == null) {
            return key;
        }
        try {
            Key translated = KeyFactory.getInstance(key.getAlgorithm(), provider).translateKey(key);
            return translated instanceof PrivateKey pk ? pk : key;
        } catch (Exception e) {
            return key; // e.g. ACCP has no Ed25519 key factory; signing with the JDK key works
        }
    }

    private static String describe(Throwable error) {
        if (error == null) {
            return "unknown reason";
        }
        if (error instanceof ClassNotFoundException) {
            return "class " + ACCP_CLASS + " is not on the class path";
        }
        return error.getClass().getSimpleName() + (error.getMessage() == null ? "" : ": " + error.getMessage());
    }
}
