package io.asyncctx.quic;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.KeyMatch;
import io.asyncctx.netty.InlinePolicy;
import io.asyncctx.netty.OffloadConfig;
import io.netty.handler.codec.quic.BoringSSLContextOption;
import io.netty.handler.codec.quic.BoringSSLKeylessManagerFactory;
import io.netty.handler.codec.quic.Quic;
import io.netty.handler.codec.quic.QuicSslContextBuilder;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContextOption;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.security.GeneralSecurityException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import javax.net.ssl.TrustManagerFactory;

/**
 * Builds a {@link QuicAsyncSslContext}: a keyless QUIC (BoringSSL) context whose private-key operations go to an
 * {@link AsyncEngine} through {@link io.asyncctx.AsyncJob}s. It reads like {@link io.asyncctx.netty.AsyncSslContextBuilder}
 * (same factories, same {@link OffloadConfig}, same {@link InlinePolicy}) and refuses the same setups: no private key is ever handed to
 * BoringSSL (the context is built on {@link BoringSSLKeylessManagerFactory}, so BoringSSL cannot sign by itself), and
 * the engine's key (and the fallback engine's) must match the certificate.
 *
 * <p>Any key type the engine signs with works, Ed25519 included: the context maps every TLS authentication method to
 * the certificate's own key type ({@link BoringSSLContextOption#SERVER_KEY_TYPES},
 * {@link BoringSSLContextOption#CLIENT_KEY_TYPES}), since it has exactly one certificate.
 *
 * <p>Threading: a builder, for one thread. The context it builds is thread-safe.
 */
public final class QuicAsyncSslContextBuilder {

    /** Authentication methods BoringSSL's certificate callback may name (Netty's defaults and TLS 1.3's). */
    private static final String[] AUTH_METHODS = {"RSA", "DHE_RSA", "ECDHE_RSA", "ECDHE_ECDSA", "ECDH_RSA",
        "ECDH_ECDSA", "DH_RSA", "UNKNOWN"};

    private final boolean forServer;
    private final AsyncEngine engine;
    private final X509Certificate[] chain;
    private OffloadConfig config = OffloadConfig.defaults();
    private InlinePolicy inlinePolicy = InlinePolicy.never();
    private String[] applicationProtocols;
    private ClientAuth clientAuth;
    private TrustManagerFactory trustManagerFactory;
    private X509Certificate[] trustCertificates;
    private final Map<SslContextOption<?>, Object> options = new LinkedHashMap<>();

    private QuicAsyncSslContextBuilder(boolean forServer, AsyncEngine engine, X509Certificate[] chain) {
        this.forServer = forServer;
        this.engine = Objects.requireNonNull(engine, "engine");
        Objects.requireNonNull(chain, "chain");
        if (chain.length == 0) {
            throw new IllegalArgumentException("chain: empty; give the certificate of the engine's key first, then "
                    + "its intermediates");
        }
        for (int i = 0; i < chain.length; i++) {
            Objects.requireNonNull(chain[i], "chain[" + i + "]");
        }
        this.chain = chain.clone();
    }

    /** A server context for {@code engine}'s key with the certificate chain {@code chain} (leaf first). */
    public static QuicAsyncSslContextBuilder forServer(AsyncEngine engine, X509Certificate... chain) {
        return new QuicAsyncSslContextBuilder(true, engine, chain);
    }

    /** A server context for {@code engine}'s key with the PEM certificate chain in {@code chainPem}. */
    public static QuicAsyncSslContextBuilder forServer(AsyncEngine engine, File chainPem) {
        return new QuicAsyncSslContextBuilder(true, engine, readChain(chainPem));
    }

    /**
     * A client context whose certificate (for mutual TLS) is signed for by {@code engine}: the client's
     * CertificateVerify signature is offloaded the same way.
     */
    public static QuicAsyncSslContextBuilder forClient(AsyncEngine engine, X509Certificate... chain) {
        return new QuicAsyncSslContextBuilder(false, engine, chain);
    }

    /** Offload settings (notification path, job bound, timeouts, retries, fallback, metrics). */
    public QuicAsyncSslContextBuilder offloadConfig(OffloadConfig config) {
        this.config = Objects.requireNonNull(config, "config");
        return this;
    }

    /**
     * Which signatures are so cheap that they run inline on the QUIC channel's event loop instead of through a job
     * (default: {@link InlinePolicy#never()}), as for TCP. Measured once, here, at {@link #build()}, with the engine's
     * {@link AsyncEngine#inlineSigner()}; engines without one never run anything inline.
     */
    public QuicAsyncSslContextBuilder inlinePolicy(InlinePolicy policy) {
        this.inlinePolicy = Objects.requireNonNull(policy, "policy");
        return this;
    }

    /** ALPN protocols, for example {@code Http3.supportedApplicationProtocols()}. QUIC needs at least one. */
    public QuicAsyncSslContextBuilder applicationProtocols(String... protocols) {
        this.applicationProtocols = Objects.requireNonNull(protocols, "protocols").clone();
        return this;
    }

    /** Whether a server asks clients for certificates. */
    public QuicAsyncSslContextBuilder clientAuth(ClientAuth clientAuth) {
        this.clientAuth = Objects.requireNonNull(clientAuth, "clientAuth");
        return this;
    }

    /** Trust anchors for verifying the peer. */
    public QuicAsyncSslContextBuilder trustManager(X509Certificate... trusted) {
        this.trustCertificates = Objects.requireNonNull(trusted, "trusted").clone();
        this.trustManagerFactory = null;
        return this;
    }

    /** Trust anchors for verifying the peer. */
    public QuicAsyncSslContextBuilder trustManager(TrustManagerFactory factory) {
        this.trustManagerFactory = Objects.requireNonNull(factory, "factory");
        this.trustCertificates = null;
        return this;
    }

    /**
     * A Netty context option, passed through ({@link BoringSSLContextOption#GROUPS},
     * {@link BoringSSLContextOption#SIGNATURE_ALGORITHMS}); the key-type options are this builder's own and are
     * refused.
     */
    public <T> QuicAsyncSslContextBuilder option(SslContextOption<T> option, T value) {
        Objects.requireNonNull(option, "option");
        if (option == BoringSSLContextOption.SERVER_KEY_TYPES || option == BoringSSLContextOption.CLIENT_KEY_TYPES) {
            throw new IllegalArgumentException("option " + option + " is set by QuicAsyncSslContextBuilder itself "
                    + "from the certificate's key type; remove it");
        }
        options.put(option, value);
        return this;
    }

    /**
     * Builds the context.
     *
     * @throws IllegalStateException when QUIC's native library is missing or the engine's key does not match the
     *     certificate (the message says what to do)
     * @throws IllegalArgumentException when Netty refuses the settings
     */
    public QuicAsyncSslContext build() {
        if (!Quic.isAvailable()) {
            throw new IllegalStateException("QUIC is not available: add io.netty:netty-codec-native-quic with the "
                    + "classifier of your platform (linux-x86_64) to the class path; cause: "
                    + Quic.unavailabilityCause());
        }
        checkEngineKey(engine, "engine");
        if (config.fallbackEngine() != null) {
            checkEngineKey(config.fallbackEngine(), "fallback engine");
        }
        RedriveExecutor executor = new RedriveExecutor();
        QuicKeyMethod method = new QuicKeyMethod(executor, inlinePolicy.resolve(engine));
        BoringSSLKeylessManagerFactory keyless;
        try {
            keyless = BoringSSLKeylessManagerFactory.newKeyless(method, chain);
        } catch (GeneralSecurityException | IOException e) {
            throw new IllegalArgumentException("cannot make a keyless key manager for the certificate chain: " + e, e);
        }
        QuicSslContextBuilder b = forServer ? QuicSslContextBuilder.forServer(keyless, null)
                : QuicSslContextBuilder.forClient().keyManager(keyless, null);
        String keyType = chain[0].getPublicKey().getAlgorithm();
        if (forServer) {
            Map<String, String> types = new HashMap<>();
            for (String m : AUTH_METHODS) {
                types.put(m, keyType);
            }
            b.option(BoringSSLContextOption.SERVER_KEY_TYPES, types);
        } else {
            b.option(BoringSSLContextOption.CLIENT_KEY_TYPES, Set.of(keyType));
        }
        if (applicationProtocols != null) {
            b.applicationProtocols(applicationProtocols);
        }
        if (clientAuth != null) {
            b.clientAuth(clientAuth);
        }
        if (trustManagerFactory != null) {
            b.trustManager(trustManagerFactory);
        } else if (trustCertificates != null) {
            b.trustManager(trustCertificates);
        }
        for (Map.Entry<SslContextOption<?>, Object> e : options.entrySet()) {
            setOption(b, e.getKey(), e.getValue());
        }
        OffloadConfig quicConfig = config.toBuilder().metrics(config.metrics().forProtocol(QuicAsyncSslContext.PROTOCOL))
                .build();
        return new QuicAsyncSslContext(b.build(), engine, quicConfig, method, executor);
    }

    @SuppressWarnings("unchecked")
    private static <T> void setOption(QuicSslContextBuilder b, SslContextOption<T> option, Object value) {
        b.option(option, (T) value);
    }

    private void checkEngineKey(AsyncEngine e, String role) {
        KeyMatch.requireEngineMatches(e, chain[0], role);
    }

    private static X509Certificate[] readChain(File pem) {
        Objects.requireNonNull(pem, "chainPem");
        try (InputStream in = Files.newInputStream(pem.toPath())) {
            X509Certificate[] c = CertificateFactory.getInstance("X.509").generateCertificates(in).stream()
                    .map(x -> (X509Certificate) x).toArray(X509Certificate[]::new);
            if (c.length == 0) {
                throw new IllegalArgumentException(pem + ": no certificate found; expected PEM blocks "
                        + "'-----BEGIN CERTIFICATE-----'");
            }
            return c;
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalArgumentException(pem + ": cannot read a PEM certificate chain: " + e.getMessage(), e);
        }
    }
}
