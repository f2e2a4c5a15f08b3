package io.asyncctx.netty;

import java.net.Socket;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.cert.X509Certificate;
import java.util.Locale;
import javax.net.ssl.ExtendedSSLSession;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLSession;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * Threading: immutable, safe on any thread.
 *
 * <p>A key manager with one certificate chain and no private key: BoringSSL gets the chain and leaves every private-key
 * operation to the async key method. Unlike Netty's keyless key store it answers for any key type, so Ed25519
 * certificates work too (Netty only asks for "RSA" and "EC" aliases).
 *
 * <p>With a second chain of another key type (RSA and ECDSA side by side, as nginx's two {@code ssl_certificate} lines;
 * made by {@link AsyncSslContextBuilder#secondKey}) the server picks, per handshake, the ECDSA chain for a client whose
 * signature algorithms include ECDSA and the RSA chain for the others, from the signature algorithms BoringSSL read
 * from the ClientHello (the handshake session's peer signature algorithms). Netty asks for a server alias by the
 * authentication methods of the server's cipher list, not the client's; the choice here ignores that order and asks the
 * client's signature algorithms alone. A TLS 1.2 client that offers ECDSA signatures but only RSA cipher suites is not
 * served (none does in practice).
 *
 * <p>Use it for contexts whose key operations are done elsewhere: {@link AsyncSslContextBuilder} does, and so can a
 * custom {@code OpenSslAsyncPrivateKeyMethod}.
 */
public final class KeylessKeyManager extends X509ExtendedKeyManager {

    static final String ALIAS = "async-offload";

    static final String SECOND_ALIAS = "async-offload-second";

    private final X509Certificate[] chain;
    private final X509Certificate[] second;
    private final String secondType;

    /** A key manager for {@code chain} (leaf first). */
    public KeylessKeyManager(X509Certificate... chain) {
        if (chain == null || chain.length == 0) {
            throw new IllegalArgumentException("chain: give at least the leaf certificate");
        }
        this.chain = chain.clone();
        this.second = null;
        this.secondType = null;
    }

    /** A key manager for two chains whose keys are of different types (one RSA, one EC). */
    KeylessKeyManager(X509Certificate[] chain, X509Certificate[] second) {
        this.chain = chain.clone();
        this.second = second.clone();
        this.secondType = keyType(second[0].getPublicKey());
    }

    /** "RSA", "EC" or "Ed25519": the key type as {@link io.asyncctx.engine.SignatureScheme#keyAlgorithm()} says it. */
    static String keyType(PublicKey key) {
        String a = key.getAlgorithm();
        return switch (a.toUpperCase(Locale.ROOT)) {
            case "EC", "ECDSA" -> "EC";
            case "EDDSA", "ED25519" -> "Ed25519";
            default -> a;
        };
    }

    private String serverAlias(String keyType, SSLEngine engine) {
        if (second == null) {
            return ALIAS;
        }
        String preferred = clientPrefers(engine, keyType);
        return secondType.equals(preferred) ? SECOND_ALIAS : ALIAS;
    }

    /**
     * "EC" when the client offers an ECDSA signature algorithm, else "RSA"; when the client's list is not known, the
     * key type Netty asked for.
     */
    private static String clientPrefers(SSLEngine engine, String keyType) {
        SSLSession session = engine == null ? null : engine.getHandshakeSession();
        String[] algorithms = session instanceof ExtendedSSLSession e ? e.getPeerSupportedSignatureAlgorithms() : null;
        if (algorithms == null || algorithms.length == 0) {
            return keyType != null && keyType.startsWith("EC") ? "EC" : "RSA";
        }
        for (String a : algorithms) {
            if (a.toUpperCase(Locale.ROOT).contains("ECDSA")) {
                return "EC";
            }
        }
        return "RSA";
    }

    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
        return new String[] {ALIAS};
    }

    @Override
    public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
        return ALIAS;
    }

    @Override
    public String chooseEngineClientAlias(String[] keyType, Principal[] issuers, SSLEngine engine) {
        return ALIAS;
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
        return second == null ? new String[] {ALIAS} : new String[] {ALIAS, SECOND_ALIAS};
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
        return serverAlias(keyType, null);
    }

    @Override
    public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
        return serverAlias(keyType, engine);
    }

    @Override
    public X509Certificate[] getCertificateChain(String alias) {
        if (SECOND_ALIAS.equals(alias) && second != null) {
            return second.clone();
        }
        return ALIAS.equals(alias) ? chain.clone() : null;
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
        return null; // keyless: the key stays with the engine
    }
}
