package io.asyncctx.engine;

import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import java.util.EnumMap;
import java.util.Map;

/** Key pairs generated once per test JVM with the JDK's KeyPairGenerator. Thread-safe (initialised lazily, once). */
final class TestKeys {

    private static final Map<SignatureScheme, KeyPair> BY_SCHEME = new EnumMap<>(SignatureScheme.class);
    private static KeyPair rsa;
    private static KeyPair p256;
    private static KeyPair p384;
    private static KeyPair p521;
    private static KeyPair ed25519;

    private TestKeys() {
    }

    static synchronized KeyPair rsa() {
        if (rsa == null) {
            rsa = generate("RSA", null);
        }
        return rsa;
    }

    static synchronized KeyPair forScheme(SignatureScheme scheme) {
        return BY_SCHEME.computeIfAbsent(scheme, s -> switch (s) {
            case ECDSA_SHA1, ECDSA_SECP256R1_SHA256 -> p256 == null ? p256 = generate("EC", "secp256r1") : p256;
            case ECDSA_SECP384R1_SHA384 -> p384 == null ? p384 = generate("EC", "secp384r1") : p384;
            case ECDSA_SECP521R1_SHA512 -> p521 == null ? p521 = generate("EC", "secp521r1") : p521;
            case ED25519 -> ed25519 == null ? ed25519 = generate("Ed25519", null) : ed25519;
            default -> rsa();
        });
    }

    private static KeyPair generate(String algorithm, String curve) {
        try {
            KeyPairGenerator g = KeyPairGenerator.getInstance(algorithm);
            if (curve != null) {
                g.initialize(new ECGenParameterSpec(curve));
            } else if (algorithm.equals("RSA")) {
                g.initialize(2048);
            }
            return g.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}
