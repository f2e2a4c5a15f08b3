package io.asyncctx.engine;

import java.security.GeneralSecurityException;
import java.security.InvalidKeyException;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.Signature;
import java.util.Objects;
import javax.crypto.Cipher;

/**
 * A {@link KeySigner} over a JCA {@link PrivateKey} and a provider: AWS-LC through Amazon Corretto Crypto Provider,
 * the JDK's own providers, or SunPKCS11 for a key that lives on a token.
 *
 * <p>Threading: thread-safe; keeps no per-call state besides the JCA objects it creates for each call.
 */
public final class JcaKeySigner implements KeySigner {

    private final PrivateKey privateKey;
    private final PublicKey publicKey;
    private final Provider provider;

    /**
     * @param privateKey the private key (its encoding is never logged or exposed)
     * @param publicKey the matching public key
     * @param provider the provider to sign with, or null for the JDK's preference order
     */
    public JcaKeySigner(PrivateKey privateKey, PublicKey publicKey, Provider provider) {
        this.privateKey = Objects.requireNonNull(privateKey, "privateKey");
        this.publicKey = Objects.requireNonNull(publicKey, "publicKey");
        this.provider = provider;
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

    @Override
    public byte[] perform(KeyOperation operation) throws GeneralSecurityException {
        if (operation.type() == KeyOperation.Type.DECRYPT) {
            if (!"RSA".equals(privateKey.getAlgorithm())) {
                throw new InvalidKeyException("decrypt needs an RSA key, not " + privateKey.getAlgorithm());
            }
            Cipher cipher = provider == null ? Cipher.getInstance("RSA/ECB/NoPadding")
                    : Cipher.getInstance("RSA/ECB/NoPadding", provider);
            cipher.init(Cipher.DECRYPT_MODE, privateKey);
            return cipher.doFinal(operation.input());
        }
        SignatureScheme scheme = operation.signatureScheme();
        if (!keyFits(scheme)) {
            throw new InvalidKeyException(scheme + " needs a " + scheme.keyAlgorithm() + " key, not "
                    + privateKey.getAlgorithm());
        }
        Signature signature = provider == null ? Signature.getInstance(scheme.jcaAlgorithm())
                : Signature.getInstance(scheme.jcaAlgorithm(), provider);
        if (scheme.isPss()) {
            signature.setParameter(scheme.parameters());
        }
        signature.initSign(privateKey);
        signature.update(operation.input());
        return signature.sign();
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
                + (provider == null ? "default" : provider.getName()) + ']';
    }
}
