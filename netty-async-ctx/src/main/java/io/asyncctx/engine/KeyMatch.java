package io.asyncctx.engine;

import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;

/**
 * Threading: stateless; any thread, but {@link #matches} performs a private-key operation (it may block on a
 * token): call it at startup, never on an event loop.
 *
 * <p>The key/certificate match probe, written once: sign a random challenge with the private key (wherever it lives: in
 * memory, on a token) and verify it with the certificate's public key. Engines run it when they are built and the
 * context builder runs it for a JDK-path key, so that a key that does not belong to its certificate fails at startup
 * rather than in every handshake.
 */
public final class KeyMatch {

    private static final SecureRandom RANDOM = new SecureRandom();

    private KeyMatch() {
    }

    /**
     * The scheme the probe signs with for a key of this JCA algorithm ("RSA", "EC", "Ed25519" or "EdDSA").
     *
     * @throws IllegalArgumentException for another algorithm (the message lists the supported ones)
     */
    public static SignatureScheme probeScheme(String keyAlgorithm) {
        return switch (keyAlgorithm) {
            case "RSA" -> SignatureScheme.RSA_PKCS1_SHA256;
            case "EC" -> SignatureScheme.ECDSA_SECP256R1_SHA256;
            case "EdDSA", "Ed25519" -> SignatureScheme.ED25519;
            default -> throw new IllegalArgumentException("key algorithm " + keyAlgorithm + " is not supported; use "
                    + "an RSA, EC (P-256, P-384, P-521) or Ed25519 key");
        };
    }

    /**
     * Signs a random 32-byte challenge with {@code signer} and verifies it with {@code publicKey}.
     *
     * @return true when the signature verifies
     * @throws GeneralSecurityException when the signer cannot sign (the key refuses, the token fails)
     */
    public static boolean matches(KeySigner signer, PublicKey publicKey) throws GeneralSecurityException {
        SignatureScheme scheme = probeScheme(publicKey.getAlgorithm());
        byte[] challenge = new byte[32];
        RANDOM.nextBytes(challenge);
        byte[] signature = signer.perform(KeyOperation.sign(scheme, challenge));
        Signature verifier = Signature.getInstance(scheme.jcaAlgorithm());
        verifier.initVerify(publicKey);
        verifier.update(challenge);
        try {
            return verifier.verify(signature);
        } catch (java.security.SignatureException e) {
            return false; // not even well-formed for this public key: another key made it
        }
    }

    /** {@link #matches(KeySigner, PublicKey)} for a private key in memory, signed with the JDK's providers. */
    public static boolean matches(PrivateKey privateKey, PublicKey publicKey) throws GeneralSecurityException {
        return matches(new JcaKeySigner(privateKey, publicKey, null), publicKey);
    }

    /**
     * Refuses an engine whose public key is not the one in {@code certificate}, with a message that says what to do;
     * {@code role} names the engine in it ("engine", "fallback engine"). Both context builders (TCP and QUIC) call it.
     *
     * @throws IllegalStateException when the engine exposes no public key or another one
     */
    public static void requireEngineMatches(AsyncEngine engine, java.security.cert.X509Certificate certificate,
                                            String role) {
        PublicKey engineKey = engine.publicKey();
        if (engineKey == null) {
            throw new IllegalStateException(role + " '" + engine.name() + "' does not expose its public key, so it "
                    + "cannot be checked against the certificate; implement AsyncEngine.publicKey()");
        }
        PublicKey certKey = certificate.getPublicKey();
        if (!java.util.Arrays.equals(engineKey.getEncoded(), certKey.getEncoded())) {
            throw new IllegalStateException("the key of " + role + " '" + engine.name() + "' does not match the "
                    + "certificate " + certificate.getSubjectX500Principal().getName() + " (certificate key: "
                    + certKey.getAlgorithm() + ", engine key: " + engineKey.getAlgorithm() + "); give the engine "
                    + "the private key of that certificate, or the certificate of that key");
        }
    }
}
