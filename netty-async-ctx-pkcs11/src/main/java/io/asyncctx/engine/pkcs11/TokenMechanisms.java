package io.asyncctx.engine.pkcs11;

import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.SignatureScheme;
import io.asyncctx.engine.pkcs11.Cryptoki.Mechanism;
import org.xipki.pkcs11.wrapper.PKCS11Constants;
import org.xipki.pkcs11.wrapper.PKCS11Exception;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.InvalidKeyException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * How a TLS key operation becomes one PKCS#11 call: the message is hashed here (so only a digest crosses a p11-kit
 * link) and signed with the raw mechanism: {@code CKM_RSA_PKCS} over a DigestInfo, {@code CKM_RSA_PKCS_PSS} with MGF1
 * of the same hash and salt = hash length, {@code CKM_ECDSA} (the token's r||s turned into the DER that TLS wants),
 * {@code CKM_EDDSA} over the whole message (Ed25519 hashes by itself), and {@code CKM_RSA_X_509} for the raw RSA
 * decryption of TLS 1.2 static-RSA key exchange.
 *
 * <p><b>Threading.</b> Stateless; called on a worker thread with that worker's session, holding the module's read lock.
 */
final class TokenMechanisms {

    /** The key types the engine can use. */
    enum KeyKind {
        RSA("RSA"), EC("EC"), ED25519("Ed25519");

        final String jcaAlgorithm;

        KeyKind(String jcaAlgorithm) {
            this.jcaAlgorithm = jcaAlgorithm;
        }

        static KeyKind ofCkk(long ckk) {
            if (ckk == PKCS11Constants.CKK_RSA) {
                return RSA;
            } else if (ckk == PKCS11Constants.CKK_EC) {
                return EC;
            } else if (ckk == PKCS11Constants.CKK_EC_EDWARDS) {
                return ED25519;
            }
            return null;
        }

        static KeyKind ofJca(String algorithm) {
            return switch (algorithm) {
                case "RSA" -> RSA;
                case "EC" -> EC;
                case "Ed25519", "EdDSA" -> ED25519;
                default -> null;
            };
        }
    }

    private static final HexFormat HEX = HexFormat.of();
    private static final byte[] SHA1_PREFIX = HEX.parseHex("3021300906052b0e03021a05000414");
    private static final byte[] SHA256_PREFIX = HEX.parseHex("3031300d060960864801650304020105000420");
    private static final byte[] SHA384_PREFIX = HEX.parseHex("3041300d060960864801650304020205000430");
    private static final byte[] SHA512_PREFIX = HEX.parseHex("3051300d060960864801650304020305000440");

    private TokenMechanisms() {
    }

    /**
     * Performs the operation with the private key {@code keyHandle} on {@code session} of {@code c}.
     *
     * @throws InvalidKeyException when the operation does not fit the key (ECDSA asked of an RSA key)
     * @throws PKCS11Exception when the token refuses or fails
     */
    static byte[] perform(Cryptoki c, long session, long keyHandle, KeyKind kind, KeyOperation operation)
            throws GeneralSecurityException, PKCS11Exception {
        if (operation.type() == KeyOperation.Type.DECRYPT) {
            if (kind != KeyKind.RSA) {
                throw new InvalidKeyException("raw RSA decryption needs an RSA key; the token key is " + kind);
            }
            return c.decrypt(session, Mechanism.of(PKCS11Constants.CKM_RSA_X_509), keyHandle, operation.input());
        }
        SignatureScheme scheme = operation.signatureScheme();
        if (KeyKind.ofJca(scheme.keyAlgorithm()) != kind) {
            throw new InvalidKeyException(scheme + " needs a " + scheme.keyAlgorithm() + " key; the token key is "
                    + kind);
        }
        byte[] input = operation.input();
        switch (scheme) {
            case ED25519:
                return c.sign(session, Mechanism.of(PKCS11Constants.CKM_EDDSA), keyHandle, input);
            case RSA_PSS_RSAE_SHA256:
                return pss(c, session, keyHandle, "SHA-256", PKCS11Constants.CKM_SHA256,
                        PKCS11Constants.CKG_MGF1_SHA256, 32, input);
            case RSA_PSS_RSAE_SHA384:
                return pss(c, session, keyHandle, "SHA-384", PKCS11Constants.CKM_SHA384,
                        PKCS11Constants.CKG_MGF1_SHA384, 48, input);
            case RSA_PSS_RSAE_SHA512:
                return pss(c, session, keyHandle, "SHA-512", PKCS11Constants.CKM_SHA512,
                        PKCS11Constants.CKG_MGF1_SHA512, 64, input);
            default:
                break;
        }
        String digest = digestOf(scheme);
        byte[] hash = MessageDigest.getInstance(digest).digest(input);
        if (kind == KeyKind.RSA) {
            byte[] prefix = digestInfoPrefix(digest);
            byte[] digestInfo = new byte[prefix.length + hash.length];
            System.arraycopy(prefix, 0, digestInfo, 0, prefix.length);
            System.arraycopy(hash, 0, digestInfo, prefix.length, hash.length);
            return c.sign(session, Mechanism.of(PKCS11Constants.CKM_RSA_PKCS), keyHandle, digestInfo);
        }
        byte[] raw = c.sign(session, Mechanism.of(PKCS11Constants.CKM_ECDSA), keyHandle, hash);
        return rawEcdsaToDer(raw);
    }

    private static byte[] pss(Cryptoki c, long session, long key, String digest, long hashMech, long mgf,
                              int saltLength, byte[] input) throws NoSuchAlgorithmException, PKCS11Exception {
        byte[] hash = MessageDigest.getInstance(digest).digest(input);
        return c.sign(session, new Mechanism(PKCS11Constants.CKM_RSA_PKCS_PSS, hashMech, mgf, saltLength), key, hash);
    }

    private static String digestOf(SignatureScheme scheme) throws NoSuchAlgorithmException {
        return switch (scheme) {
            case RSA_PKCS1_SHA1, ECDSA_SHA1 -> "SHA-1";
            case RSA_PKCS1_SHA256, ECDSA_SECP256R1_SHA256 -> "SHA-256";
            case RSA_PKCS1_SHA384, ECDSA_SECP384R1_SHA384 -> "SHA-384";
            case RSA_PKCS1_SHA512, ECDSA_SECP521R1_SHA512 -> "SHA-512";
            default -> throw new NoSuchAlgorithmException("no digest for " + scheme);
        };
    }

    private static byte[] digestInfoPrefix(String digest) {
        return switch (digest) {
            case "SHA-1" -> SHA1_PREFIX;
            case "SHA-256" -> SHA256_PREFIX;
            case "SHA-384" -> SHA384_PREFIX;
            default -> SHA512_PREFIX;
        };
    }

    /** r||s (each half the length) as the DER SEQUENCE { INTEGER r, INTEGER s } of X9.62. */
    static byte[] rawEcdsaToDer(byte[] raw) throws GeneralSecurityException {
        if (raw.length == 0 || raw.length % 2 != 0) {
            throw new GeneralSecurityException("the token returned an ECDSA signature of " + raw.length + " bytes; "
                    + "expected r||s of equal halves");
        }
        int half = raw.length / 2;
        byte[] r = new BigInteger(1, java.util.Arrays.copyOfRange(raw, 0, half)).toByteArray();
        byte[] s = new BigInteger(1, java.util.Arrays.copyOfRange(raw, half, raw.length)).toByteArray();
        ByteArrayOutputStream body = new ByteArrayOutputStream(raw.length + 8);
        writeTlv(body, 0x02, r);
        writeTlv(body, 0x02, s);
        ByteArrayOutputStream out = new ByteArrayOutputStream(raw.length + 11);
        writeTlv(out, 0x30, body.toByteArray());
        return out.toByteArray();
    }

    private static void writeTlv(ByteArrayOutputStream out, int tag, byte[] value) {
        out.write(tag);
        int n = value.length;
        if (n < 0x80) {
            out.write(n);
        } else if (n < 0x100) {
            out.write(0x81);
            out.write(n);
        } else {
            out.write(0x82);
            out.write(n >> 8);
            out.write(n & 0xff);
        }
        out.write(value, 0, n);
    }
}
