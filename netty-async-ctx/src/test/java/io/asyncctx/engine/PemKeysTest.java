package io.asyncctx.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPrivateKey;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

@Timeout(120)
class PemKeysTest {

    private static Path dir;

    @BeforeAll
    static void makeDir() throws IOException {
        dir = Files.createTempDirectory("asyncctx-pemkeys");
    }

    @AfterAll
    static void removeDir() throws IOException {
        OpenSsl.deleteTree(dir);
    }

    /**
     * Generates a key with openssl in one of its PEM formats, a self-signed certificate for it, reads both, and checks
     * that the key read signs what the certificate's public key verifies (so the key was read correctly, not merely
     * parsed).
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "rsa-pkcs8     | PRIVATE KEY     | RSA     | genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out KEY",
        "rsa-trad      | RSA PRIVATE KEY | RSA     | genrsa -traditional -out KEY 2048",
        "ec-p256-trad  | EC PRIVATE KEY  | EC      | ecparam -name prime256v1 -genkey -out KEY",
        "ec-p384-trad  | EC PRIVATE KEY  | EC      | ecparam -name secp384r1 -genkey -noout -out KEY",
        "ec-p521-trad  | EC PRIVATE KEY  | EC      | ecparam -name secp521r1 -genkey -out KEY",
        "ec-p256-pkcs8 | PRIVATE KEY     | EC      | genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out KEY",
        "ec-p384-pkcs8 | PRIVATE KEY     | EC      | genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out KEY",
        "ed25519       | PRIVATE KEY     | EdDSA   | genpkey -algorithm ed25519 -out KEY",
    })
    void shouldReadEveryUnencryptedKeyFormatThatMatchesItsCertificate(String name, String label, String algorithm,
            String command) throws Exception {
        OpenSsl.assumeAvailable();
        Path key = dir.resolve(name + ".key.pem");
        Path cert = dir.resolve(name + ".cert.pem");
        OpenSsl.run(dir, command.replace("KEY", key.toString()).split(" "));
        assertTrue(Files.readString(key).contains("-----BEGIN " + label + "-----"), "openssl wrote " + label);
        OpenSsl.run(dir, "req", "-x509", "-key", key.toString(), "-subj", "/CN=" + name, "-days", "1",
                "-out", cert.toString());

        PrivateKey privateKey = PemKeys.readPrivateKey(key);
        List<X509Certificate> chain = PemKeys.readCertificates(cert);
        assertEquals(algorithm, privateKey.getAlgorithm());
        assertEquals(1, chain.size());
        PublicKey publicKey = chain.get(0).getPublicKey();

        SignatureScheme scheme = switch (algorithm) {
            case "RSA" -> SignatureScheme.RSA_PSS_RSAE_SHA256;
            case "EC" -> switch (((ECPrivateKey) privateKey).getParams().getCurve().getField().getFieldSize()) {
                case 256 -> SignatureScheme.ECDSA_SECP256R1_SHA256;
                case 384 -> SignatureScheme.ECDSA_SECP384R1_SHA384;
                default -> SignatureScheme.ECDSA_SECP521R1_SHA512;
            };
            default -> SignatureScheme.ED25519;
        };
        byte[] message = new byte[146];
        new SecureRandom().nextBytes(message);
        byte[] sig = new JcaKeySigner(privateKey, publicKey, null).perform(KeyOperation.sign(scheme, message));
        assertTrue(SoftwareEngineTest.verify(scheme, publicKey, message, sig), "key of " + name + " fits its cert");
        String pemText = Files.readString(key);
        assertFalse(privateKey.toString().contains(pemText.substring(40, 70)), "toString leaks no key text");
    }

    @Test
    void shouldRefuseAnEncryptedPkcs8KeyAndSayHowToDecryptIt() throws Exception {
        OpenSsl.assumeAvailable();
        Path key = dir.resolve("enc-pkcs8.pem");
        OpenSsl.run(dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes-128-cbc",
                "-pass", "pass:secret", "-out", key.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PemKeys.readPrivateKey(key));
        assertTrue(e.getMessage().contains(key.toString()), e::getMessage);
        assertTrue(e.getMessage().contains("openssl pkcs8 -topk8 -nocrypt"), e::getMessage);
        assertNoKeyText(e, key);
    }

    @Test
    void shouldRefuseAnEncryptedTraditionalKeyAndSayHowToDecryptIt() throws Exception {
        OpenSsl.assumeAvailable();
        Path key = dir.resolve("enc-trad.pem");
        OpenSsl.run(dir, "genrsa", "-traditional", "-aes128", "-passout", "pass:secret", "-out", key.toString(),
                "2048");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PemKeys.readPrivateKey(key));
        assertTrue(e.getMessage().contains(key.toString()), e::getMessage);
        assertTrue(e.getMessage().contains("ENCRYPTED"), e::getMessage);
        assertTrue(e.getMessage().contains("openssl pkcs8 -topk8 -nocrypt"), e::getMessage);
        assertNoKeyText(e, key);
    }

    @Test
    void shouldRefuseExplicitCurveParametersAndEd448WithAHint() throws Exception {
        OpenSsl.assumeAvailable();
        Path explicit = dir.resolve("ec-explicit.pem");
        OpenSsl.run(dir, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-param_enc", "explicit",
                "-out", explicit.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PemKeys.readPrivateKey(explicit));
        assertTrue(e.getMessage().contains("named_curve"), e::getMessage);
        assertNoKeyText(e, explicit);

        Path ed448 = dir.resolve("ed448.pem");
        OpenSsl.run(dir, "genpkey", "-algorithm", "ed448", "-out", ed448.toString());
        IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class,
                () -> PemKeys.readPrivateKey(ed448));
        assertTrue(e2.getMessage().contains("Ed448") && e2.getMessage().contains(ed448.toString()), e2::getMessage);
    }

    @Test
    void shouldReadAChainInFileOrderAndSkipOtherBlocks() throws Exception {
        OpenSsl.assumeAvailable();
        Path caKey = dir.resolve("ca.key");
        Path ca = dir.resolve("ca.pem");
        Path leafKey = dir.resolve("leaf.key");
        Path csr = dir.resolve("leaf.csr");
        Path leaf = dir.resolve("leaf.pem");
        OpenSsl.run(dir, "genpkey", "-algorithm", "ed25519", "-out", caKey.toString());
        OpenSsl.run(dir, "req", "-x509", "-key", caKey.toString(), "-subj", "/CN=ca", "-days", "1",
                "-out", ca.toString());
        OpenSsl.run(dir, "genpkey", "-algorithm", "ed25519", "-out", leafKey.toString());
        OpenSsl.run(dir, "req", "-new", "-key", leafKey.toString(), "-subj", "/CN=leaf", "-out", csr.toString());
        OpenSsl.run(dir, "x509", "-req", "-in", csr.toString(), "-CA", ca.toString(), "-CAkey", caKey.toString(),
                "-CAcreateserial", "-days", "1", "-out", leaf.toString());
        Path bundle = dir.resolve("bundle.pem");
        Files.writeString(bundle, "leaf then ca\n" + Files.readString(leaf) + Files.readString(leafKey)
                + Files.readString(ca));

        List<X509Certificate> chain = PemKeys.readCertificates(bundle);
        assertEquals(2, chain.size());
        assertTrue(chain.get(0).getSubjectX500Principal().getName().contains("CN=leaf"));
        assertTrue(chain.get(1).getSubjectX500Principal().getName().contains("CN=ca"));
        chain.get(0).verify(chain.get(1).getPublicKey());
        // The key in the same file is found too.
        assertEquals(PemKeys.readPrivateKey(leafKey).getAlgorithm(), PemKeys.readPrivateKey(bundle).getAlgorithm());
    }

    @Test
    void shouldNameTheFileAndWhatWasExpectedWhenTheContentIsWrong() throws Exception {
        KeyPair rsa = TestKeys.rsa();
        Path keyOnly = dir.resolve("key-only.pem");
        String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII))
                .encodeToString(rsa.getPrivate().getEncoded());
        Files.writeString(keyOnly, "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n");
        assertEquals(rsa.getPrivate(), PemKeys.readPrivateKey(keyOnly), "a JDK-encoded PKCS#8 key reads back");

        IllegalArgumentException noCert = assertThrows(IllegalArgumentException.class,
                () -> PemKeys.readCertificates(keyOnly));
        assertTrue(noCert.getMessage().contains(keyOnly.toString()), noCert::getMessage);
        assertTrue(noCert.getMessage().contains("BEGIN CERTIFICATE"), noCert::getMessage);
        assertTrue(noCert.getMessage().contains("found [PRIVATE KEY]"), noCert::getMessage);
        assertNoKeyText(noCert, keyOnly);

        Path text = dir.resolve("not-pem.txt");
        Files.writeString(text, "hello\n");
        IllegalArgumentException noKey = assertThrows(IllegalArgumentException.class,
                () -> PemKeys.readPrivateKey(text));
        assertTrue(noKey.getMessage().contains(text.toString()) && noKey.getMessage().contains("PRIVATE KEY"),
                noKey::getMessage);

        Path badBase64 = dir.resolve("bad64.pem");
        Files.writeString(badBase64, "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n");
        IllegalArgumentException b64 = assertThrows(IllegalArgumentException.class,
                () -> PemKeys.readPrivateKey(badBase64));
        assertTrue(b64.getMessage().contains("base64") && b64.getMessage().contains(badBase64.toString()),
                b64::getMessage);

        Path truncated = dir.resolve("truncated.pem");
        Files.writeString(truncated, "-----BEGIN PRIVATE KEY-----\n" + body.substring(0, 40) + "\n");
        IllegalArgumentException cut = assertThrows(IllegalArgumentException.class,
                () -> PemKeys.readPrivateKey(truncated));
        assertTrue(cut.getMessage().contains("-----END PRIVATE KEY-----"), cut::getMessage);
        assertNoKeyText(cut, truncated);

        Path garbage = dir.resolve("garbage.pem");
        Files.writeString(garbage, "-----BEGIN RSA PRIVATE KEY-----\n" + body.substring(0, 64)
                + "\n-----END RSA PRIVATE KEY-----\n");
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> PemKeys.readPrivateKey(garbage));
        assertTrue(bad.getMessage().contains(garbage.toString()), bad::getMessage);
        assertNoKeyText(bad, garbage);

        assertThrows(NoSuchFileException.class, () -> PemKeys.readPrivateKey(dir.resolve("missing.pem")));
    }

    /** The message and its causes contain no line of the key file's base64 body. */
    private static void assertNoKeyText(Throwable e, Path file) throws IOException {
        List<String> lines = Files.readAllLines(file).stream()
                .filter(l -> l.length() >= 16 && !l.startsWith("-----") && !l.contains(":")).toList();
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = String.valueOf(t.getMessage());
            for (String l : lines) {
                assertFalse(m.contains(l.substring(0, 16)), "key text in message: " + m);
            }
        }
    }
}
