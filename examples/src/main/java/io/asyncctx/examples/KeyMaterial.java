package io.asyncctx.examples;

import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;

import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.cert.X509Certificate;

/**
 * The server's certificate chain and, when it is in memory, its private key.
 *
 * <p>Threading: immutable.
 *
 * @param chain the chain, leaf first
 * @param privateKey the key in memory, or null when it lives in an HSM
 */
record KeyMaterial(X509Certificate[] chain, PrivateKey privateKey) {

    /** A fresh self-signed certificate for localhost and 127.0.0.1 with a new key of the given type. */
    static KeyMaterial selfSigned(Choices.KeyType keyType) {
        CertificateBuilder.Algorithm alg = switch (keyType) {
            case RSA -> CertificateBuilder.Algorithm.rsa2048;
            case EC -> CertificateBuilder.Algorithm.ecp256;
            case P384 -> CertificateBuilder.Algorithm.ecp384;
            case ED25519 -> CertificateBuilder.Algorithm.ed25519;
        };
        try {
            X509Bundle b = new CertificateBuilder().subject("CN=localhost").addSanDnsName("localhost")
                    .addSanIpAddress("127.0.0.1").setIsCertificateAuthority(true).algorithm(alg).buildSelfSigned();
            return new KeyMaterial(new X509Certificate[] {b.getCertificate()}, b.getKeyPair().getPrivate());
        } catch (Exception e) {
            throw new IllegalStateException("cannot create a self-signed " + keyType.label + " certificate: " + e, e);
        }
    }

    PublicKey publicKey() {
        return chain[0].getPublicKey();
    }

    KeyPair keyPair() {
        return new KeyPair(publicKey(), privateKey);
    }
}
