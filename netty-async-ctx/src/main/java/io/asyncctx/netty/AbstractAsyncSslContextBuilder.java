package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.KeyMatch;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContextOption;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import javax.net.ssl.SSLException;
import javax.net.ssl.TrustManagerFactory;

/**
 * Threading: a builder, for one thread. The context it builds is thread-safe.
 *
 * <p>What the library's context builders share: {@link AsyncSslContextBuilder} (TCP, this module) and
 * {@code io.asyncctx.quic.QuicAsyncSslContextBuilder} (QUIC, module {@code netty-async-ctx-quic}), the way Netty's
 * {@code SslContextBuilder} feeds several contexts. It holds the engine and its certificate chain (checked at
 * construction), the offload settings, the inline policy, client authentication, trust anchors and pass-through Netty
 * options, and it checks the same mistakes the same way for both:
 * <ul>
 *   <li>a null or empty chain, or a null certificate in it: {@link NullPointerException} /
 *       {@link IllegalArgumentException} from the factory method;</li>
 *   <li>a PEM file without certificates: {@link IllegalArgumentException} from the factory method;</li>
 *   <li>an option that the builder sets itself, or a value that would crash the JVM: {@link IllegalArgumentException}
 *       from {@link #option}, naming the option;</li>
 *   <li>an engine (or fallback engine) whose key does not match the certificate: {@link IllegalStateException} from
 *       {@link #build()};</li>
 *   <li>Netty cannot build the context: {@link SSLException} from {@link #build()}.</li>
 * </ul>
 * Public only because the QUIC module extends it; it is not meant to be extended outside this library.
 *
 * @param <B> the concrete builder (for chained calls)
 * @param <C> the context it builds
 */
public abstract class AbstractAsyncSslContextBuilder<B extends AbstractAsyncSslContextBuilder<B, C>, C> {

    private final boolean forServer;
    private final AsyncEngine engine;
    private final X509Certificate[] chain;
    private OffloadConfig config = OffloadConfig.defaults();
    private InlinePolicy inlinePolicy = InlinePolicy.never();
    private ClientAuth clientAuth;
    private TrustManagerFactory trustManagerFactory;
    private X509Certificate[] trustCertificates;
    private final Map<SslContextOption<?>, Object> options = new LinkedHashMap<>();

    /**
     * A builder for {@code engine}'s key and its certificate chain (leaf first).
     *
     * @throws NullPointerException when {@code engine}, {@code chain} or a certificate in it is null
     * @throws IllegalArgumentException when {@code chain} is empty
     */
    protected AbstractAsyncSslContextBuilder(boolean forServer, AsyncEngine engine, X509Certificate[] chain) {
        this.forServer = forServer;
        this.engine = Objects.requireNonNull(engine, "engine");
        this.chain = requireChain(chain, "chain", "the engine's key");
    }

    /** {@code chain}, copied, after checking that it has a first certificate and no null one. */
    static X509Certificate[] requireChain(X509Certificate[] chain, String name, String whose) {
        Objects.requireNonNull(chain, name);
        if (chain.length == 0) {
            throw new IllegalArgumentException(name + ": empty; give the certificate of " + whose + " first, then "
                    + "its intermediates");
        }
        for (int i = 0; i < chain.length; i++) {
            Objects.requireNonNull(chain[i], name + "[" + i + "]");
        }
        return chain.clone();
    }

    @SuppressWarnings("unchecked")
    private B self() {
        return (B) this;
    }

    /** Offload settings (notification path, job bound, timeouts, retries, fallback, metrics). */
    public final B offloadConfig(OffloadConfig config) {
        this.config = Objects.requireNonNull(config, "config");
        return self();
    }

    /**
     * Which signatures are so cheap that they run inline on the event loop instead of through a job (default:
     * {@link InlinePolicy#never()}). Measured once, at {@link #build()}, with the engine's
     * {@link AsyncEngine#inlineSigner()}; engines without one never run anything inline.
     */
    public final B inlinePolicy(InlinePolicy policy) {
        this.inlinePolicy = Objects.requireNonNull(policy, "policy");
        return self();
    }

    /** Whether a server asks clients for certificates. */
    public final B clientAuth(ClientAuth clientAuth) {
        this.clientAuth = Objects.requireNonNull(clientAuth, "clientAuth");
        return self();
    }

    /** Trust anchors for verifying the peer (replaces a trust manager factory given before). */
    public final B trustManager(X509Certificate... trusted) {
        this.trustCertificates = Objects.requireNonNull(trusted, "trusted").clone();
        this.trustManagerFactory = null;
        return self();
    }

    /** Trust anchors for verifying the peer (replaces certificates given before). */
    public final B trustManager(TrustManagerFactory factory) {
        this.trustManagerFactory = Objects.requireNonNull(factory, "factory");
        this.trustCertificates = null;
        return self();
    }

    /**
     * A Netty context option, passed through to the Netty builder at {@link #build()}. The options that the builder
     * sets itself (the key method and, for QUIC, the key types) are refused here.
     *
     * @throws IllegalArgumentException when the builder sets {@code option} itself or {@code value} would crash the
     *     JVM (the message names the option and says what to do)
     */
    public final <T> B option(SslContextOption<T> option, T value) {
        Objects.requireNonNull(option, "option");
        String refusal = refusal(option, value);
        if (refusal != null) {
            throw new IllegalArgumentException(refusal);
        }
        options.put(option, value);
        return self();
    }

    /**
     * Builds the context.
     *
     * @throws IllegalStateException when the setup would crash, silently bypass offload, or an engine's key does not
     *     match the certificate (the message says what to do)
     * @throws SSLException when Netty cannot build the context
     */
    public abstract C build() throws SSLException;

    /**
     * Why {@code option} set to {@code value} is refused (a message naming the option and saying what to do), or null
     * when it is passed through.
     */
    protected abstract String refusal(SslContextOption<?> option, Object value);

    /** True for a server context, false for a client one (mutual TLS). */
    protected final boolean isServer() {
        return forServer;
    }

    /** The engine that performs the private-key operations. */
    protected final AsyncEngine engine() {
        return engine;
    }

    /** The certificate chain, leaf first (the builder's own array: do not modify it). */
    protected final X509Certificate[] chain() {
        return chain;
    }

    /** The offload settings. */
    protected final OffloadConfig config() {
        return config;
    }

    /** The inline policy, measured once in {@link #build()} (by {@link AbstractAsyncKeyMethod}'s constructor). */
    protected final InlinePolicy inlinePolicy() {
        return inlinePolicy;
    }

    /**
     * Checks that the engine's key, and the fallback engine's if there is one, match the chain's leaf certificate.
     *
     * @throws IllegalStateException when one does not (the message says which and what to do)
     */
    protected final void checkEngineKeys() {
        KeyMatch.requireEngineMatches(engine, chain[0], "engine");
        if (config.fallbackEngine() != null) {
            KeyMatch.requireEngineMatches(config.fallbackEngine(), chain[0], "fallback engine");
        }
    }

    /**
     * Hands client authentication, trust anchors and the options to a Netty builder through its own setters, given as
     * bound method references ({@code b::clientAuth, b::trustManager, b::trustManager, b::option}); whatever was not
     * set is left alone.
     */
    protected final void applyCommon(Consumer<ClientAuth> clientAuthSetter,
                                     Consumer<TrustManagerFactory> trustFactorySetter,
                                     Consumer<X509Certificate[]> trustCertificatesSetter,
                                     BiConsumer<SslContextOption<Object>, Object> optionSetter) {
        if (clientAuth != null) {
            clientAuthSetter.accept(clientAuth);
        }
        if (trustManagerFactory != null) {
            trustFactorySetter.accept(trustManagerFactory);
        } else if (trustCertificates != null) {
            trustCertificatesSetter.accept(trustCertificates);
        }
        for (Map.Entry<SslContextOption<?>, Object> e : options.entrySet()) {
            @SuppressWarnings("unchecked")
            SslContextOption<Object> option = (SslContextOption<Object>) e.getKey();
            optionSetter.accept(option, e.getValue());
        }
    }

    /**
     * The certificates of the PEM file {@code pem} (leaf first).
     *
     * @throws IllegalArgumentException when the file cannot be read or holds no certificate (the message says which
     *     file and what was expected)
     */
    protected static X509Certificate[] readChain(File pem) {
        Objects.requireNonNull(pem, "chainPem");
        try (InputStream in = new FileInputStream(pem)) {
            X509Certificate[] chain = CertificateFactory.getInstance("X.509").generateCertificates(in).stream()
                    .map(c -> (X509Certificate) c).toArray(X509Certificate[]::new);
            if (chain.length == 0) {
                throw new IllegalArgumentException(pem + ": no certificate found; expected PEM blocks "
                        + "'-----BEGIN CERTIFICATE-----'");
            }
            return chain;
        } catch (IOException | CertificateException e) {
            throw new IllegalArgumentException(pem + ": cannot read a PEM certificate chain: " + e.getMessage(), e);
        }
    }
}
