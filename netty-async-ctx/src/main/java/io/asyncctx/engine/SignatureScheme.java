package io.asyncctx.engine;

import java.security.spec.AlgorithmParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;

/**
 * Threading: an enum, immutable and safe on any thread. {@link #parameters()} returns a fresh or immutable spec.
 *
 * <p>The TLS signature schemes (RFC 8446 code points) that BoringSSL asks a private-key method for, with the JCA
 * algorithm that computes each over the whole message.
 */
public enum SignatureScheme {
    /** RSASSA-PKCS1-v1_5 with SHA-1 (TLS 1.2 only). */
    RSA_PKCS1_SHA1(0x0201, "RSA", "SHA1withRSA", null),
    /** RSASSA-PKCS1-v1_5 with SHA-256. */
    RSA_PKCS1_SHA256(0x0401, "RSA", "SHA256withRSA", null),
    /** RSASSA-PKCS1-v1_5 with SHA-384. */
    RSA_PKCS1_SHA384(0x0501, "RSA", "SHA384withRSA", null),
    /** RSASSA-PKCS1-v1_5 with SHA-512. */
    RSA_PKCS1_SHA512(0x0601, "RSA", "SHA512withRSA", null),
    /** RSASSA-PSS with SHA-256, MGF1 with SHA-256, salt 32 bytes (key of type rsaEncryption). */
    RSA_PSS_RSAE_SHA256(0x0804, "RSA", "RSASSA-PSS", "SHA-256"),
    /** RSASSA-PSS with SHA-384, MGF1 with SHA-384, salt 48 bytes. */
    RSA_PSS_RSAE_SHA384(0x0805, "RSA", "RSASSA-PSS", "SHA-384"),
    /** RSASSA-PSS with SHA-512, MGF1 with SHA-512, salt 64 bytes. */
    RSA_PSS_RSAE_SHA512(0x0806, "RSA", "RSASSA-PSS", "SHA-512"),
    /** ECDSA with SHA-1 (TLS 1.2 only). */
    ECDSA_SHA1(0x0203, "EC", "SHA1withECDSA", null),
    /** ECDSA on P-256 with SHA-256. */
    ECDSA_SECP256R1_SHA256(0x0403, "EC", "SHA256withECDSA", null),
    /** ECDSA on P-384 with SHA-384. */
    ECDSA_SECP384R1_SHA384(0x0503, "EC", "SHA384withECDSA", null),
    /** ECDSA on P-521 with SHA-512. */
    ECDSA_SECP521R1_SHA512(0x0603, "EC", "SHA512withECDSA", null),
    /** Ed25519 (pure EdDSA over the message). */
    ED25519(0x0807, "Ed25519", "Ed25519", null);

    private final int codePoint;
    private final String keyAlgorithm;
    private final String jcaAlgorithm;
    private final String pssDigest;

    SignatureScheme(int codePoint, String keyAlgorithm, String jcaAlgorithm, String pssDigest) {
        this.codePoint = codePoint;
        this.keyAlgorithm = keyAlgorithm;
        this.jcaAlgorithm = jcaAlgorithm;
        this.pssDigest = pssDigest;
    }

    /** The TLS code point, as passed to {@code OpenSslAsyncPrivateKeyMethod.sign}. */
    public int codePoint() {
        return codePoint;
    }

    /** The key algorithm this scheme needs: "RSA", "EC" or "Ed25519". */
    public String keyAlgorithm() {
        return keyAlgorithm;
    }

    /** The JCA {@code Signature} algorithm name. */
    public String jcaAlgorithm() {
        return jcaAlgorithm;
    }

    /** True for the RSASSA-PSS schemes. */
    public boolean isPss() {
        return pssDigest != null;
    }

    /** The parameters to pass to {@code Signature.setParameter}, or null when the scheme has none. */
    public AlgorithmParameterSpec parameters() {
        if (pssDigest == null) {
            return null;
        }
        int saltLength = switch (pssDigest) {
            case "SHA-256" -> 32;
            case "SHA-384" -> 48;
            default -> 64;
        };
        return new PSSParameterSpec(pssDigest, "MGF1", new MGF1ParameterSpec(pssDigest), saltLength, 1);
    }

    /**
     * The scheme for a TLS code point.
     *
     * @throws IllegalArgumentException for a code point this library does not sign with (for example
     *     rsa_pkcs1_md5_sha1, used only by TLS 1.0 and 1.1: disable those protocol versions)
     */
    public static SignatureScheme ofCodePoint(int codePoint) {
        for (SignatureScheme s : values()) {
            if (s.codePoint == codePoint) {
                return s;
            }
        }
        throw new IllegalArgumentException(String.format("signature algorithm 0x%04x is not supported; "
                + "offload supports RSA PKCS#1 and PSS, ECDSA and Ed25519 schemes of TLS 1.2 and 1.3", codePoint));
    }
}
