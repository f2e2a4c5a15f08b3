package io.asyncctx.examples;

import io.asyncctx.netty.AsyncSslContextBuilder;
import io.netty.channel.ChannelHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSslContextOption;
import io.netty.handler.ssl.ReferenceCountedOpenSslEngine;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.internal.tcnative.SSL;

import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Objects;
import java.util.function.Function;
import javax.net.ssl.SSLEngine;

/**
 * The example server's TLS configuration apart from its key: versions, cipher suites, key-exchange groups, whose
 * cipher preference wins, ALPN, and client certificates. The same settings apply in every mode (offload, inline,
 * blocking), so the modes differ only in who signs.
 *
 * <p>The default cipher list is what nginx's defaults ({@code ssl_ciphers HIGH:!aNULL:!MD5}) accept among the ECDHE
 * AEAD suites of TLS 1.2, plus the three TLS 1.3 suites: AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305 with ECDSA
 * and with RSA certificates. The default groups are Netty's for BoringSSL: X25519MLKEM768 (post-quantum hybrid),
 * X25519, P-256, P-384, P-521 (nginx with OpenSSL 3.0 offers X25519, P-256, X448, P-521, P-384; BoringSSL has no
 * X448).
 *
 * <p>Threading: immutable.
 *
 * @param protocols the TLS versions, for example "TLSv1.3", "TLSv1.2"
 * @param ciphers the cipher suites, IANA or OpenSSL names
 * @param groups the key-exchange groups in preference order (OpenSSL names: X25519, P-256, ...), or null for
 *     Netty's default
 * @param serverCipherOrder true to choose the cipher suite by the server's order (Netty's default), false to follow
 *     the client's (nginx's default)
 * @param alpn the application protocols offered in ALPN, in preference order, for example "h2", "http/1.1"
 * @param clientAuth whether clients are asked for a certificate
 * @param clientCa the certificates that client certificates must chain to, or null when {@code clientAuth} is NONE
 */
public record TlsSettings(List<String> protocols, List<String> ciphers, List<String> groups, boolean serverCipherOrder,
                          List<String> alpn, ClientAuth clientAuth, X509Certificate[] clientCa) {

    /** The TLS 1.2 ECDHE AEAD suites nginx accepts by default, in the server's preference order, then TLS 1.3's. */
    public static final List<String> DEFAULT_CIPHERS = List.of(
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256");

    /** The TLS 1.3 suites BoringSSL offers, kept whenever TLS 1.3 is on. */
    public static final List<String> TLS13_CIPHERS = List.of(
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256");

    /**
     * Validates; copies the lists and the array. With TLS 1.3 among the protocols and no TLS 1.3 suite among the
     * ciphers, TLS 1.3's three suites are added, as nginx's {@code ssl_ciphers} never touches TLS 1.3 (Netty would
     * otherwise turn TLS 1.3 off without a word); {@code protocols} is the one switch for versions.
     */
    public TlsSettings {
        protocols = List.copyOf(protocols);
        ciphers = List.copyOf(ciphers);
        if (protocols.contains("TLSv1.3") && ciphers.stream().noneMatch(TlsSettings::isTls13Suite)) {
            List<String> all = new java.util.ArrayList<>(ciphers);
            all.addAll(TLS13_CIPHERS);
            ciphers = List.copyOf(all);
        }
        groups = groups == null ? null : List.copyOf(groups);
        alpn = List.copyOf(alpn);
        Objects.requireNonNull(clientAuth, "clientAuth");
        if (clientAuth != ClientAuth.NONE && (clientCa == null || clientCa.length == 0)) {
            throw new IllegalArgumentException("--client-auth " + clientAuth.name().toLowerCase(java.util.Locale.ROOT)
                    + " needs --client-ca FILE: the CA certificates that client certificates must chain to");
        }
        clientCa = clientCa == null ? null : clientCa.clone();
    }

    /** TLS 1.3 and 1.2, {@link #DEFAULT_CIPHERS}, Netty's groups, server order, h2 and http/1.1, no client auth. */
    public static TlsSettings defaults() {
        return new TlsSettings(List.of("TLSv1.3", "TLSv1.2"), DEFAULT_CIPHERS, null, true,
                List.of(ApplicationProtocolNames.HTTP_2, ApplicationProtocolNames.HTTP_1_1), ClientAuth.NONE, null);
    }

    /** Whether a cipher suite name (IANA or OpenSSL, the same for TLS 1.3) is one of TLS 1.3's. */
    static boolean isTls13Suite(String name) {
        return name.startsWith("TLS_AES_") || name.startsWith("TLS_CHACHA20_");
    }

    /** The client CA certificates (a copy), or null. */
    @Override
    public X509Certificate[] clientCa() {
        return clientCa == null ? null : clientCa.clone();
    }

    /** Whether HTTP/2 is offered in ALPN. */
    public boolean http2() {
        return alpn.contains(ApplicationProtocolNames.HTTP_2);
    }

    /** Applies the settings to stock Netty's builder (inline and blocking modes). */
    void applyTo(SslContextBuilder b) {
        b.protocols(protocols.toArray(String[]::new)).ciphers(ciphers);
        if (groups != null) {
            b.option(OpenSslContextOption.GROUPS, groups.toArray(String[]::new));
        }
        if (!alpn.isEmpty()) {
            b.applicationProtocolConfig(alpnConfig());
        }
        if (clientAuth != ClientAuth.NONE) {
            b.clientAuth(clientAuth).trustManager(clientCa());
        }
    }

    /** Applies the settings to the offload builder (through its customizer, which keeps the key with the engine). */
    void applyTo(AsyncSslContextBuilder b) {
        b.customize(this::applyTo);
    }

    /**
     * Applies what Netty's builder cannot express, per connection: the client's cipher order. Netty always sets
     * {@code SSL_OP_CIPHER_SERVER_PREFERENCE} on its contexts; when the client's order should win, this clears it on
     * each connection's {@code SSL} right after the handler is made (before the ClientHello is read).
     */
    Function<SocketChannel, ChannelHandler> perConnection(Function<SocketChannel, ChannelHandler> tls) {
        if (serverCipherOrder) {
            return tls;
        }
        return ch -> {
            ChannelHandler h = tls.apply(ch);
            SSLEngine engine = ((SslHandler) h).engine();
            SSL.clearOptions(((ReferenceCountedOpenSslEngine) engine).sslPointer(), SSL.SSL_OP_CIPHER_SERVER_PREFERENCE);
            return h;
        };
    }

    private ApplicationProtocolConfig alpnConfig() {
        return new ApplicationProtocolConfig(ApplicationProtocolConfig.Protocol.ALPN,
                ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
                ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT, alpn);
    }
}
