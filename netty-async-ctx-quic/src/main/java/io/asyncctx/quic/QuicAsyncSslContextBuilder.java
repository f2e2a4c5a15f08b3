package io.asyncctx.quic;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.netty.AbstractAsyncSslContextBuilder;
import io.asyncctx.netty.InlinePolicy;
import io.asyncctx.netty.OffloadConfig;
import io.netty.handler.codec.quic.BoringSSLContextOption;
import io.netty.handler.codec.quic.BoringSSLKeylessManagerFactory;
import io.netty.handler.codec.quic.Quic;
import io.netty.handler.codec.quic.QuicSslContextBuilder;
import io.netty.handler.ssl.SslContextOption;

import java.io.File;
import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.cert.X509Certificate;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import javax.net.ssl.SSLException;

/**
 * Threading: a builder, for one thread. The context it builds is thread-safe.
 *
 * <p>Builds a {@link QuicAsyncSslContext}: a keyless QUIC (BoringSSL) context whose private-key operations go to an
 * {@link AsyncEngine} through {@link io.asyncctx.AsyncJob}s. It shares with {@link io.asyncctx.netty.AsyncSslContextBuilder}
 * its factories, settings and checks ({@link AbstractAsyncSslContextBuilder}: same {@link OffloadConfig}, same
 * {@link InlinePolicy}, the same exceptions for the same mistakes): no private key is ever handed to BoringSSL (the
 * context is built on {@link BoringSSLKeylessManagerFactory}, so BoringSSL cannot sign by itself), and the engine's key
 * (and the fallback engine's) must match the certificate.
 *
 * <p>Any key type the engine signs with works, Ed25519 included: the context maps every TLS authentication method to
 * the certificate's own key type ({@link BoringSSLContextOption#SERVER_KEY_TYPES},
 * {@link BoringSSLContextOption#CLIENT_KEY_TYPES}), since it has exactly one certificate; {@link #option} refuses those
 * two options.
 */
public final class QuicAsyncSslContextBuilder
        extends AbstractAsyncSslContextBuilder<QuicAsyncSslContextBuilder, QuicAsyncSslContext> {

    /** Authentication methods BoringSSL's certificate callback may name (Netty's defaults and TLS 1.3's). */
    private static final String[] AUTH_METHODS = {"RSA", "DHE_RSA", "ECDHE_RSA", "ECDHE_ECDSA", "ECDH_RSA",
        "ECDH_ECDSA", "DH_RSA", "UNKNOWN"};

    private String[] applicationProtocols;

    private QuicAsyncSslContextBuilder(boolean forServer, AsyncEngine engine, X509Certificate[] chain) {
        super(forServer, engine, chain);
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

    /** ALPN protocols, for example {@code Http3.supportedApplicationProtocols()}. QUIC needs at least one. */
    public QuicAsyncSslContextBuilder applicationProtocols(String... protocols) {
        this.applicationProtocols = Objects.requireNonNull(protocols, "protocols").clone();
        return this;
    }

    /**
     * Refuses the key-type options, which this builder sets from the certificate's key type; passes the others
     * through ({@link BoringSSLContextOption#GROUPS}, {@link BoringSSLContextOption#SIGNATURE_ALGORITHMS}).
     */
    @Override
    protected String refusal(SslContextOption<?> option, Object value) {
        if (option == BoringSSLContextOption.SERVER_KEY_TYPES || option == BoringSSLContextOption.CLIENT_KEY_TYPES) {
            return "option " + option + " is set by QuicAsyncSslContextBuilder itself from the certificate's key "
                    + "type; remove it";
        }
        return null;
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalStateException also when QUIC's native library is missing
     * @throws IllegalArgumentException when Netty's QUIC builder refuses the settings
     */
    @Override
    public QuicAsyncSslContext build() throws SSLException {
        if (!Quic.isAvailable()) {
            throw new IllegalStateException("QUIC is not available: add io.netty:netty-codec-native-quic with the "
                    + "classifier of your platform (linux-x86_64) to the class path; cause: "
                    + Quic.unavailabilityCause());
        }
        checkEngineKeys();
        AsyncEngine engine = engine();
        X509Certificate[] chain = chain();
        OffloadConfig config = config();
        RedriveExecutor executor = new RedriveExecutor();
        QuicKeyMethod method = new QuicKeyMethod(executor, inlinePolicy(), engine);
        BoringSSLKeylessManagerFactory keyless;
        try {
            keyless = BoringSSLKeylessManagerFactory.newKeyless(method, chain);
        } catch (GeneralSecurityException | IOException e) {
            throw new SSLException("cannot make a keyless key manager for the certificate chain: " + e, e);
        }
        QuicSslContextBuilder b = isServer() ? QuicSslContextBuilder.forServer(keyless, null)
                : QuicSslContextBuilder.forClient().keyManager(keyless, null);
        String keyType = chain[0].getPublicKey().getAlgorithm();
        if (isServer()) {
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
        applyCommon(b::clientAuth, b::trustManager, b::trustManager, b::option);
        OffloadConfig quicConfig = config.toBuilder()
                .metrics(config.metrics().forProtocol(QuicAsyncSslContext.PROTOCOL)).build();
        return new QuicAsyncSslContext(b.build(), engine, quicConfig, method, executor);
    }
}
