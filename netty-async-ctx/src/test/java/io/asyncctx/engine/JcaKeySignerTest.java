package io.asyncctx.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.security.KeyPair;
import java.security.NoSuchAlgorithmException;
import java.security.Provider;
import java.security.Security;
import java.util.EnumSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class JcaKeySignerTest {

    private static final byte[] MESSAGE = "the whole handshake message".getBytes();

    @Test
    void shouldLoadAccpWithoutInstallingItGlobally() {
        assertTrue(CryptoProviders.isAccpAvailable(), "ACCP 2.5.0 linux-x86_64 is a dependency of this module");
        Provider accp = CryptoProviders.select(CryptoProviders.Choice.ACCP);
        assertTrue(CryptoProviders.isAccp(accp));
        assertSame(accp, CryptoProviders.select(CryptoProviders.Choice.AUTO));
        assertNull(CryptoProviders.select(CryptoProviders.Choice.JDK));
        assertNull(Security.getProvider(accp.getName()), "ACCP must not be in the JVM-wide provider list");
    }

    /** The support matrix of ACCP 2.5.0: every scheme and raw RSA decrypt stays on ACCP, nothing falls back. */
    @Test
    void shouldDoEverySchemeAndDecryptOnAccpWithoutFallback() throws Exception {
        Provider accp = CryptoProviders.accp();
        for (SignatureScheme scheme : SignatureScheme.values()) {
            KeyPair keys = TestKeys.forScheme(scheme);
            JcaKeySigner signer = JcaKeySigner.withJdkFallback(keys.getPrivate(), keys.getPublic(), accp);
            byte[] sig = signer.perform(KeyOperation.sign(scheme, MESSAGE));
            assertTrue(SoftwareEngineTest.verify(scheme, keys.getPublic(), MESSAGE, sig), scheme.toString());
            assertSame(accp, signer.providerFor(scheme), scheme + " should stay on ACCP");
        }
        KeyPair rsa = TestKeys.rsa();
        JcaKeySigner signer = JcaKeySigner.withJdkFallback(rsa.getPrivate(), rsa.getPublic(), accp);
        assertEquals(256, signer.perform(KeyOperation.decrypt(new byte[256])).length);
        assertSame(accp, signer.decryptProvider());
    }

    @Test
    void shouldFallBackToTheJdkPerOperationThatTheProviderCannotDo() throws Exception {
        // SunRsaSign signs RSA but has no ECDSA, no Ed25519 and no Cipher: those fall back, RSA stays.
        Provider rsaOnly = Security.getProvider("SunRsaSign");
        KeyPair rsa = TestKeys.rsa();
        JcaKeySigner rsaSigner = JcaKeySigner.withJdkFallback(rsa.getPrivate(), rsa.getPublic(), rsaOnly);
        rsaSigner.perform(KeyOperation.sign(SignatureScheme.RSA_PSS_RSAE_SHA384, MESSAGE));
        assertSame(rsaOnly, rsaSigner.providerFor(SignatureScheme.RSA_PSS_RSAE_SHA384));
        byte[] plain = new byte[256];
        plain[255] = 7;
        javax.crypto.Cipher enc = javax.crypto.Cipher.getInstance("RSA/ECB/NoPadding");
        enc.init(javax.crypto.Cipher.ENCRYPT_MODE, rsa.getPublic());
        KeySigner confined = rsaSigner.threadConfined();
        for (int i = 0; i < 2; i++) {
            assertEquals(7, confined.perform(KeyOperation.decrypt(enc.doFinal(plain)))[255]);
        }
        assertNull(rsaSigner.decryptProvider(), "decrypt fell back to the JDK");

        Set<SignatureScheme> ecSchemes = EnumSet.of(SignatureScheme.ECDSA_SECP256R1_SHA256,
                SignatureScheme.ECDSA_SECP384R1_SHA384, SignatureScheme.ED25519);
        for (SignatureScheme scheme : ecSchemes) {
            KeyPair keys = TestKeys.forScheme(scheme);
            JcaKeySigner signer = JcaKeySigner.withJdkFallback(keys.getPrivate(), keys.getPublic(), rsaOnly);
            KeySigner local = signer.threadConfined();
            for (int i = 0; i < 2; i++) {
                byte[] sig = local.perform(KeyOperation.sign(scheme, MESSAGE));
                assertTrue(SoftwareEngineTest.verify(scheme, keys.getPublic(), MESSAGE, sig), scheme.toString());
            }
            assertNull(signer.providerFor(scheme), scheme + " fell back to the JDK");
        }
    }

    @Test
    void shouldNotFallBackWithThePlainConstructor() {
        KeyPair ec = TestKeys.forScheme(SignatureScheme.ECDSA_SECP256R1_SHA256);
        JcaKeySigner strict = new JcaKeySigner(ec.getPrivate(), ec.getPublic(), Security.getProvider("SunRsaSign"));
        assertThrows(NoSuchAlgorithmException.class,
                () -> strict.perform(KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256, MESSAGE)));
    }

    @Test
    void shouldNotShowKeyMaterialInToString() {
        KeyPair rsa = TestKeys.rsa();
        JcaKeySigner signer = JcaKeySigner.withJdkFallback(rsa.getPrivate(), rsa.getPublic(), CryptoProviders.accp());
        String s = signer + " " + signer.threadConfined();
        String modulus = ((java.security.interfaces.RSAPrivateKey) rsa.getPrivate()).getModulus().toString(16);
        assertFalse(s.contains(modulus.substring(0, 16)), s);
        assertTrue(s.contains("AmazonCorrettoCryptoProvider"), s);
    }
}
