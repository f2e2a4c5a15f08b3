package io.asyncctx.netty;

import java.net.Socket;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * A key manager with one certificate chain and no private key: BoringSSL gets the chain and leaves every private-key
 * operation to the async key method. Unlike Netty's keyless key store it answers for any key type, so Ed25519
 * certificates work too (Netty only asks for "RSA" and "EC" aliases).
 *
 * <p>Use it for contexts whose key operations are done elsewhere: {@link AsyncSslContextBuilder} does, and so can a
 * custom {@code OpenSslAsyncPrivateKeyMethod}.
 *
 * <p>Threading: immutable, safe on any thread.
 */
public final class KeylessKeyManager extends X509ExtendedKeyManager {

    static final String ALIAS = "async-offload";

    private final X509Certificate[] chain;

    /** A key manager for {@code chain} (leaf first). */
    public KeylessKeyManager(X509Certificate... chain) {
        if (chain == null || chain.length == 0) {
            throw new IllegalArgumentException("chain: give at least the leaf certificate");
        }
        this.chain = chain.clone();
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
        return new String[] {ALIAS};
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
        return ALIAS;
    }

    @Override
    public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
        return ALIAS;
    }

    @Override
    public X509Certificate[] getCertificateChain(String alias) {
        return ALIAS.equals(alias) ? chain.clone() : null;
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
        return null; // keyless: the key stays with the engine
    }
}
