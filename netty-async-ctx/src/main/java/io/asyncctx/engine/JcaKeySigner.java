package io.asyncctx.engine;

import java.security.GeneralSecurityException;
import java.security.InvalidAlgorithmParameterException;
import java.security.InvalidKeyException;
import java.security.NoSuchAlgorithmException;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.ProviderException;
import java.security.PublicKey;
import java.security.Signature;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicIntegerArray;
import javax.crypto.Cipher;
import javax.crypto.NoSuchPaddingException;

/**
 * Threading: thread-safe. {@link #perform} creates the JCA objects it needs for each call; an engine's worker
 * thread that signs many times takes a {@link #threadConfined()} signer instead, which keeps one initialised
 * {@code Signature} per scheme (and one {@code Cipher}) for that thread alone. The per-operation provider choice of
 * {@link #withJdkFallback} is shared and safe to race on (every racer computes the same answer).
 *
 * <p>A {@link KeySigner} over a JCA {@link PrivateKey} and a provider: AWS-LC through Amazon Corretto Crypto Provider,
 * the JDK's own providers, or any other JCA provider (keys on a PKCS#11 token go through {@code Pkcs11Engine} instead).
 */
public final class JcaKeySigner implements KeySigner {

    private static final int UNKNOWN = 0;
    private static final int PRIMARY = 1;
    private static final int JDK = 2;
    private static final int DECRYPT_SLOT = SignatureScheme.values().length;

    private final PrivateKey privateKey;
    private final PrivateKey providerKey;
    private final PublicKey publicKey;
    private final Provider provider;
    private final boolean jdkFallback;
    /** Per scheme (by ordinal) and for decrypt (last slot): UNKNOWN, PRIMARY or JDK. */
    private final AtomicIntegerArray choices = new AtomicIntegerArray(DECRYPT_SLOT + 1);

    /**
     * @param privateKey the private key (its encoding is never logged or exposed)
     * @param publicKey the matching public key
     * @param provider the provider to sign with, or null for the JDK's preference order
     */
    public JcaKeySigner(PrivateKey privateKey, PublicKey publicKey, Provider provider) {
        this(privateKey, publicKey, provider, false);
    }

    private JcaKeySigner(PrivateKey privateKey, PublicKey publicKey, Provider provider, boolean jdkFallback) {
        this.privateKey = Objects.requireNonNull(privateKey, "privateKey");
        this.publicKey = Objects.requireNonNull(publicKey, "publicKey");
        this.provider = provider;
        this.jdkFallback = jdkFallback && provider != null;
        this.providerKey = this.jdkFallback ? CryptoProviders.translate(privateKey, provider) : privateKey;
    }

    /**
     * A signer for an in-memory key that uses {@code provider} for every operation it can do and the JDK's providers
     * for any (scheme or decrypt) it cannot: no such algorithm, or it refuses the key or the parameters. The choice is
     * made at the first use of each scheme and then kept. The key is converted once into the provider's own key type
     * when the provider can (ACCP would otherwise convert it for every new {@code Signature}).
     *
     * @param provider the preferred provider, or null for the JDK's preference order (then nothing falls back)
     */
    public static JcaKeySigner withJdkFallback(PrivateKey privateKey, PublicKey publicKey, Provider provider) {
        return new JcaKeySigner(privateKey, publicKey, provider, true);
    }

    @Override
    public PublicKey publicKey() {
        return publicKey;
    }

    /** The provider used, or null for the JDK's preference order. */
    public Provider provider() {
        return provider;
    }

    /** The key algorithm, "RSA", "EC" or "Ed25519"/"EdDSA". */
    public String keyAlgorithm() {
        return privateKey.getAlgorithm();
    }

    /**
     * The provider that signs with {@code scheme}, as far as known: {@link #provider()}, or null (the JDK) when that
     * scheme fell back. Before the first use of the scheme this answers the preferred provider.
     */
    public Provider providerFor(SignatureScheme scheme) {
        return choices.get(scheme.ordinal()) == JDK ? null : provider;
    }

    /** The provider that decrypts, as {@link #providerFor} does for signatures. */
    public Provider decryptProvider() {
        return choices.get(DECRYPT_SLOT) == JDK ? null : provider;
    }

    @Override
    public byte[] perform(KeyOperation operation) throws GeneralSecurityException {
        if (operation.type() == KeyOperation.Type.DECRYPT) {
            return newCipher().doFinal(operation.input());
        }
        Signature signature = newSignature(operation.signatureScheme());
        signature.update(operation.input());
        return signature.sign();
    }

    /**
     * A signer for one thread that keeps an initialised {@code Signature} per scheme and a {@code Cipher} between
     * calls (they reset themselves after each {@code sign()} or {@code doFinal()}). Not thread-safe: use it on the
     * thread that created it only. An object whose operation failed is dropped, not reused.
     */
    KeySigner threadConfined() {
        return new ThreadConfined();
    }

    private Signature newSignature(SignatureScheme scheme) throws GeneralSecurityException {
        if (!keyFits(scheme)) {
            throw new InvalidKeyException(scheme + " needs a " + scheme.keyAlgorithm() + " key, not "
                    + privateKey.getAlgorithm());
        }
        int slot = scheme.ordinal();
        int choice = choices.get(slot);
        if (!jdkFallback || choice == PRIMARY) {
            return initSignature(scheme, provider, providerKey);
        }
        if (choice == JDK) {
            return initSignature(scheme, null, privateKey);
        }
        try {
            Signature signature = initSignature(scheme, provider, providerKey);
            choices.set(slot, PRIMARY);
            return signature;
        } catch (NoSuchAlgorithmException | InvalidKeyException | InvalidAlgorithmParameterException
                 | ProviderException e) {
            Signature signature = initSignature(scheme, null, privateKey);
            choices.set(slot, JDK);
            return signature;
        }
    }

    private static Signature initSignature(SignatureScheme scheme, Provider provider, PrivateKey key)
            throws GeneralSecurityException {
        Signature signature = provider == null ? Signature.getInstance(scheme.jcaAlgorithm())
                : Signature.getInstance(scheme.jcaAlgorithm(), provider);
        if (scheme.isPss()) {
            signature.setParameter(scheme.parameters());
        }
        signature.initSign(key);
        return signature;
    }

    private Cipher newCipher() throws GeneralSecurityException {
        if (!"RSA".equals(privateKey.getAlgorithm())) {
            throw new InvalidKeyException("decrypt needs an RSA key, not " + privateKey.getAlgorithm());
        }
        int choice = choices.get(DECRYPT_SLOT);
        if (!jdkFallback || choice == PRIMARY) {
            return initCipher(provider, providerKey);
        }
        if (choice == JDK) {
            return initCipher(null, privateKey);
        }
        try {
            Cipher cipher = initCipher(provider, providerKey);
            choices.set(DECRYPT_SLOT, PRIMARY);
            return cipher;
        } catch (NoSuchAlgorithmException | NoSuchPaddingException | InvalidKeyException | ProviderException e) {
            Cipher cipher = initCipher(null, privateKey);
            choices.set(DECRYPT_SLOT, JDK);
            return cipher;
        }
    }

    private static Cipher initCipher(Provider provider, PrivateKey key) throws GeneralSecurityException {
        Cipher cipher = provider == null ? Cipher.getInstance("RSA/ECB/NoPadding")
                : Cipher.getInstance("RSA/ECB/NoPadding", provider);
        cipher.init(Cipher.DECRYPT_MODE, key);
        return cipher;
    }

    private boolean keyFits(SignatureScheme scheme) {
        String alg = privateKey.getAlgorithm();
        return switch (scheme.keyAlgorithm()) {
            case "Ed25519" -> "Ed25519".equalsIgnoreCase(alg) || "EdDSA".equalsIgnoreCase(alg);
            case "EC" -> "EC".equals(alg) || "ECDSA".equals(alg);
            default -> "RSA".equals(alg);
        };
    }

    @Override
    public String toString() {
        return "JcaKeySigner[" + privateKey.getAlgorithm() + ", provider="
                + (provider == null ? "default" : provider.getName()) + (jdkFallback ? ", jdkFallback" : "") + ']';
    }

    /** Keeps initialised JCA objects for one thread. */
    private final class ThreadConfined implements KeySigner {
        private final Signature[] signatures = new Signature[DECRYPT_SLOT];
        private Cipher cipher;

        @Override
        public PublicKey publicKey() {
            return publicKey;
        }

        @Override
        public byte[] perform(KeyOperation operation) throws GeneralSecurityException {
            if (operation.type() == KeyOperation.Type.DECRYPT) {
                Cipher c = cipher;
                cipher = null;
                if (c == null) {
                    c = newCipher();
                }
                byte[] out = c.doFinal(operation.input());
                cipher = c;
                return out;
            }
            int slot = operation.signatureScheme().ordinal();
            Signature s = signatures[slot];
            signatures[slot] = null;
            if (s == null) {
                s = newSignature(operation.signatureScheme());
            }
            s.update(operation.input());
            byte[] out = s.sign();
            signatures[slot] = s;
            return out;
        }

        @Override
        public String toString() {
            return "ThreadConfined" + JcaKeySigner.this;
        }
    }
}
