package io.asyncctx.engine;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Objects;

/**
 * Threading: thread-safe: a static utility without state.
 *
 * <p>Reads private keys and certificate chains from PEM files, with the JDK alone (no BouncyCastle). Private keys may
 * be PKCS#8 ({@code PRIVATE KEY}: RSA, EC or Ed25519), traditional RSA ({@code RSA PRIVATE KEY}, PKCS#1) or traditional
 * EC ({@code EC PRIVATE KEY}, SEC1 with a named curve); the traditional forms are wrapped into PKCS#8 here. Encrypted
 * keys are refused with a message that says how to decrypt them.
 *
 * <p>Error messages name the file and say what was expected; they never contain key material.
 */
public final class PemKeys {

    static final String OID_RSA = "1.2.840.113549.1.1.1";
    static final String OID_RSA_PSS = "1.2.840.113549.1.1.10";
    static final String OID_EC = "1.2.840.10045.2.1";
    static final String OID_ED25519 = "1.3.101.112";
    static final String OID_ED448 = "1.3.101.113";

    private static final String DECRYPT_FIRST = "; decrypt it first, for example with "
            + "'openssl pkcs8 -topk8 -nocrypt -in encrypted.pem -out key.pem', and keep the result readable only by "
            + "the server's user";

    private PemKeys() {
    }

    /** One PEM block: its label and the decoded DER, or whether it had encryption headers. */
    private record Block(String label, byte[] der, boolean encryptedHeaders) {
    }

    /**
     * Reads the first private key in {@code file}.
     *
     * @throws IOException when the file cannot be read
     * @throws IllegalArgumentException when the file holds no private key, an encrypted one, or one of an unsupported
     *     type
     */
    public static PrivateKey readPrivateKey(Path file) throws IOException {
        Objects.requireNonNull(file, "file");
        return parsePrivateKey(Files.readString(file, StandardCharsets.US_ASCII), file.toString());
    }

    /**
     * Reads every certificate in {@code file}, in file order (leaf first for a chain).
     *
     * @throws IOException when the file cannot be read
     * @throws IllegalArgumentException when the file holds no certificate or a certificate cannot be parsed
     */
    public static List<X509Certificate> readCertificates(Path file) throws IOException {
        Objects.requireNonNull(file, "file");
        return parseCertificates(Files.readString(file, StandardCharsets.US_ASCII), file.toString());
    }

    static PrivateKey parsePrivateKey(String pem, String source) {
        List<Block> blocks = blocks(pem, source);
        try {
            return parsePrivateKey(blocks, source);
        } finally {
            for (Block b : blocks) {
                Arrays.fill(b.der(), (byte) 0);
            }
        }
    }

    private static PrivateKey parsePrivateKey(List<Block> blocks, String source) {
        List<String> seen = new ArrayList<>();
        for (Block b : blocks) {
            switch (b.label()) {
                case "PRIVATE KEY":
                    checkNotEncrypted(b, source);
                    return fromPkcs8(b.der(), source);
                case "RSA PRIVATE KEY":
                    checkNotEncrypted(b, source);
                    return generate("RSA", wrapPkcs8(algorithmId(OID_RSA, true, null), b.der()), source,
                            "a PKCS#1 RSA private key");
                case "EC PRIVATE KEY":
                    checkNotEncrypted(b, source);
                    return fromSec1(b.der(), source);
                case "ENCRYPTED PRIVATE KEY":
                    throw new IllegalArgumentException(source + " holds an encrypted PKCS#8 private key"
                            + DECRYPT_FIRST);
                default:
                    seen.add(b.label());
            }
        }
        throw new IllegalArgumentException(source + " holds no private key: expected a PEM block '-----BEGIN PRIVATE "
                + "KEY-----' (PKCS#8), 'RSA PRIVATE KEY' or 'EC PRIVATE KEY'" + (seen.isEmpty() ? "" :
                ", found " + seen));
    }

    static List<X509Certificate> parseCertificates(String pem, String source) {
        List<X509Certificate> chain = new ArrayList<>();
        List<String> seen = new ArrayList<>();
        CertificateFactory factory;
        try {
            factory = CertificateFactory.getInstance("X.509");
        } catch (CertificateException e) {
            throw new IllegalStateException("the JDK has no X.509 certificate factory", e);
        }
        for (Block b : blocks(pem, source)) {
            if (!b.label().equals("CERTIFICATE") && !b.label().equals("TRUSTED CERTIFICATE")) {
                seen.add(b.label());
                continue;
            }
            try {
                chain.add((X509Certificate) factory.generateCertificate(new ByteArrayInputStream(b.der())));
            } catch (CertificateException | ClassCastException e) {
                throw new IllegalArgumentException("certificate " + (chain.size() + 1) + " in " + source
                        + " cannot be parsed as X.509: " + e.getMessage(), e);
            }
        }
        if (chain.isEmpty()) {
            throw new IllegalArgumentException(source + " holds no certificate: expected PEM blocks '-----BEGIN "
                    + "CERTIFICATE-----', leaf first" + (seen.isEmpty() ? "" : ", found " + seen));
        }
        return List.copyOf(chain);
    }

    private static void checkNotEncrypted(Block b, String source) {
        if (b.encryptedHeaders()) {
            throw new IllegalArgumentException(source + " holds an encrypted " + b.label() + " (Proc-Type: "
                    + "4,ENCRYPTED)" + DECRYPT_FIRST);
        }
    }

    private static List<Block> blocks(String pem, String source) {
        List<Block> out = new ArrayList<>();
        int at = 0;
        while (true) {
            int begin = pem.indexOf("-----BEGIN ", at);
            if (begin < 0) {
                return out;
            }
            int labelEnd = pem.indexOf("-----", begin + 11);
            if (labelEnd < 0) {
                throw new IllegalArgumentException(source + ": malformed PEM, a '-----BEGIN' line does not end with "
                        + "'-----'");
            }
            String label = pem.substring(begin + 11, labelEnd).trim();
            String endMarker = "-----END " + label + "-----";
            int end = pem.indexOf(endMarker, labelEnd);
            if (end < 0) {
                throw new IllegalArgumentException(source + ": malformed PEM, no '" + endMarker + "' line");
            }
            String body = pem.substring(labelEnd + 5, end);
            boolean encrypted = false;
            StringBuilder base64 = new StringBuilder(body.length());
            for (String line : body.split("\r?\n|\r")) {
                String l = line.trim();
                if (l.indexOf(':') >= 0) { // an RFC 1421 header such as Proc-Type or DEK-Info
                    encrypted |= l.startsWith("Proc-Type:") && l.contains("ENCRYPTED");
                    continue;
                }
                base64.append(l);
            }
            byte[] der;
            try {
                der = Base64.getDecoder().decode(base64.toString());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(source + ": the PEM block '" + label + "' is not valid base64", e);
            }
            out.add(new Block(label, der, encrypted));
            at = end + endMarker.length();
        }
    }

    private static PrivateKey fromPkcs8(byte[] der, String source) {
        String oid;
        try {
            Der.Reader top = new Der.Reader(der).sequence();
            top.integer(); // version 0 (v1) or 1 (v2, with public key)
            Der.Reader algorithm = top.sequence();
            oid = algorithm.oid();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + ": the PRIVATE KEY block is not a PKCS#8 structure ("
                    + e.getMessage() + ")", e);
        }
        return switch (oid) {
            case OID_RSA -> generate("RSA", der, source, "a PKCS#8 RSA private key");
            case OID_EC -> generate("EC", der, source, "a PKCS#8 EC private key");
            case OID_ED25519 -> generate("Ed25519", der, source, "a PKCS#8 Ed25519 private key");
            case OID_RSA_PSS -> throw new IllegalArgumentException(source + " holds an RSASSA-PSS-only key (OID "
                    + OID_RSA_PSS + "); use an ordinary RSA key (rsaEncryption), which TLS signs with PSS too");
            case OID_ED448 -> throw new IllegalArgumentException(source + " holds an Ed448 key; supported keys are "
                    + "RSA, EC (P-256, P-384, P-521) and Ed25519");
            default -> throw new IllegalArgumentException(source + " holds a private key of algorithm OID " + oid
                    + "; supported keys are RSA, EC (P-256, P-384, P-521) and Ed25519");
        };
    }

    /** ECPrivateKey (RFC 5915): SEQUENCE { version 1, OCTET STRING key, [0] parameters, [1] public key }. */
    private static PrivateKey fromSec1(byte[] der, String source) {
        String curve = null;
        try {
            Der.Reader key = new Der.Reader(der).sequence();
            key.integer();
            key.octetString();
            while (key.hasMore()) {
                int tag = key.peekTag();
                Der.Reader field = key.explicit();
                if (tag == 0xA0) {
                    if (field.peekTag() != Der.OID) {
                        throw new IllegalArgumentException(source + " holds an EC key with explicit curve "
                                + "parameters; convert it to a named curve first: 'openssl ec -in key.pem "
                                + "-param_enc named_curve -out named.pem'");
                    }
                    curve = field.oid();
                }
            }
        } catch (IllegalArgumentException e) {
            if (e.getMessage() != null && e.getMessage().startsWith(source)) {
                throw e;
            }
            throw new IllegalArgumentException(source + ": the EC PRIVATE KEY block is not an RFC 5915 EC key ("
                    + e.getMessage() + ")", e);
        }
        if (curve == null) {
            throw new IllegalArgumentException(source + " holds an EC key without its curve; write it with its "
                    + "parameters ('openssl pkcs8 -topk8 -nocrypt') or as PKCS#8");
        }
        return generate("EC", wrapPkcs8(algorithmId(OID_EC, false, curve), der), source, "an EC private key");
    }

    private static PrivateKey generate(String algorithm, byte[] pkcs8, String source, String what) {
        try {
            return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException(source + ": cannot read " + what + " ("
                    + e.getClass().getSimpleName() + ")", e);
        } finally {
            Arrays.fill(pkcs8, (byte) 0);
        }
    }

    /** AlgorithmIdentifier: SEQUENCE { OID, NULL or a curve OID }. */
    private static byte[] algorithmId(String oid, boolean nullParams, String paramOid) {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        Der.write(body, Der.OID, Der.encodeOid(oid));
        if (nullParams) {
            Der.write(body, 0x05, new byte[0]);
        } else if (paramOid != null) {
            Der.write(body, Der.OID, Der.encodeOid(paramOid));
        }
        return Der.tlv(Der.SEQUENCE, body.toByteArray());
    }

    /** PrivateKeyInfo: SEQUENCE { INTEGER 0, AlgorithmIdentifier, OCTET STRING key }. */
    private static byte[] wrapPkcs8(byte[] algorithmId, byte[] key) {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        Der.write(body, 0x02, new byte[] {0});
        body.writeBytes(algorithmId);
        Der.write(body, 0x04, key);
        return Der.tlv(Der.SEQUENCE, body.toByteArray());
    }

    /** The bit of DER this class needs; not a general ASN.1 library. */
    static final class Der {
        static final int SEQUENCE = 0x30;
        static final int OID = 0x06;

        private Der() {
        }

        static byte[] tlv(int tag, byte[] content) {
            ByteArrayOutputStream out = new ByteArrayOutputStream(content.length + 6);
            write(out, tag, content);
            return out.toByteArray();
        }

        static void write(ByteArrayOutputStream out, int tag, byte[] content) {
            out.write(tag);
            int len = content.length;
            if (len < 0x80) {
                out.write(len);
            } else {
                int bytes = len > 0xFFFFFF ? 4 : len > 0xFFFF ? 3 : len > 0xFF ? 2 : 1;
                out.write(0x80 | bytes);
                for (int i = bytes - 1; i >= 0; i--) {
                    out.write(len >>> (8 * i));
                }
            }
            out.writeBytes(content);
        }

        static byte[] encodeOid(String oid) {
            String[] parts = oid.split("\\.");
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.write(Integer.parseInt(parts[0]) * 40 + Integer.parseInt(parts[1]));
            for (int i = 2; i < parts.length; i++) {
                long v = Long.parseLong(parts[i]);
                int groups = 1;
                for (long t = v >>> 7; t != 0; t >>>= 7) {
                    groups++;
                }
                for (int g = groups - 1; g >= 0; g--) {
                    int b = (int) ((v >>> (7 * g)) & 0x7F);
                    out.write(g == 0 ? b : b | 0x80);
                }
            }
            return out.toByteArray();
        }

        /** Reads TLVs from a region of a byte array. */
        static final class Reader {
            private final byte[] buf;
            private int pos;
            private final int end;

            Reader(byte[] buf) {
                this(buf, 0, buf.length);
            }

            private Reader(byte[] buf, int pos, int end) {
                this.buf = buf;
                this.pos = pos;
                this.end = end;
            }

            boolean hasMore() {
                return pos < end;
            }

            int peekTag() {
                if (pos >= end) {
                    throw new IllegalArgumentException("unexpected end of data");
                }
                return buf[pos] & 0xFF;
            }

            Reader sequence() {
                return next(SEQUENCE);
            }

            Reader explicit() {
                int tag = peekTag();
                if ((tag & 0xE0) != 0xA0) {
                    throw new IllegalArgumentException(String.format("expected a context tag, found 0x%02x", tag));
                }
                return next(tag);
            }

            void integer() {
                next(0x02);
            }

            void octetString() {
                next(0x04);
            }

            String oid() {
                Reader r = next(OID);
                StringBuilder sb = new StringBuilder();
                long v = 0;
                boolean first = true;
                for (int i = r.pos; i < r.end; i++) {
                    int b = r.buf[i] & 0xFF;
                    v = (v << 7) | (b & 0x7F);
                    if ((b & 0x80) == 0) {
                        if (first) {
                            long a = Math.min(v / 40, 2);
                            sb.append(a).append('.').append(v - 40 * a);
                            first = false;
                        } else {
                            sb.append('.').append(v);
                        }
                        v = 0;
                    }
                }
                return sb.toString();
            }

            private Reader next(int expectedTag) {
                int tag = peekTag();
                if (tag != expectedTag) {
                    throw new IllegalArgumentException(String.format("expected tag 0x%02x, found 0x%02x",
                            expectedTag, tag));
                }
                pos++;
                if (pos >= end) {
                    throw new IllegalArgumentException("unexpected end of data");
                }
                int len = buf[pos++] & 0xFF;
                if (len >= 0x80) {
                    int bytes = len & 0x7F;
                    if (bytes == 0 || bytes > 4) {
                        throw new IllegalArgumentException("unsupported DER length");
                    }
                    len = 0;
                    for (int i = 0; i < bytes; i++) {
                        if (pos >= end) {
                            throw new IllegalArgumentException("unexpected end of data");
                        }
                        len = (len << 8) | (buf[pos++] & 0xFF);
                    }
                }
                if (len < 0 || len > end - pos) {
                    throw new IllegalArgumentException("a DER length runs past the end of the data");
                }
                Reader inner = new Reader(buf, pos, pos + len);
                pos += len;
                return inner;
            }
        }
    }
}
