package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.KeyMatch;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.OpenSslContextOption;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslContextOption;
import io.netty.handler.ssl.SslProvider;

import java.io.File;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;
import javax.net.ssl.SSLException;

/**
 * Threading: a builder, for one thread. The context it builds is thread-safe.
 *
 * <p>Builds an {@link AsyncSslContext}: a keyless BoringSSL context whose private-key operations go to an
 * {@link AsyncEngine} through {@link io.asyncctx.AsyncJob}s, resumed through wait fds or callbacks on each channel's
 * event loop. Server and client (mutual TLS) contexts.
 *
 * <p>It refuses, with a message that says what to do, every setup in which offload would crash or silently not
 * happen: no BoringSSL, {@code -Dio.netty.handler.ssl.openssl.useTasks=false} (crashes the JVM with a key method), an
 * engine key that does not match the certificate (at {@link #build()}); a key-method option of the caller's own or
 * {@code USE_TASKS=false} (at {@link #option}). The checks shared with the QUIC builder are listed in
 * {@link AbstractAsyncSslContextBuilder}. A private key cannot
 * reach BoringSSL through {@link #customize}: the keyless key material is applied after the customizers.
 */
public final class AsyncSslContextBuilder
        extends AbstractAsyncSslContextBuilder<AsyncSslContextBuilder, AsyncSslContext> {

    static final String USE_TASKS_PROPERTY = "io.netty.handler.ssl.openssl.useTasks";

    private AsyncEngine secondEngine;
    private X509Certificate[] secondChain;
    private SslProvider provider = SslProvider.OPENSSL;
    private PrivateKey jdkKey;
    private String[] protocols;
    private Iterable<String> ciphers;
    private ApplicationProtocolConfig apn;
    private final List<Consumer<SslContextBuilder>> customizers = new ArrayList<>();

    private AsyncSslContextBuilder(boolean forServer, AsyncEngine engine, X509Certificate[] chain) {
        super(forServer, engine, chain);
    }

    /** A server context for {@code engine}'s key with the certificate chain {@code chain} (leaf first). */
    public static AsyncSslContextBuilder forServer(AsyncEngine engine, X509Certificate... chain) {
        return new AsyncSslContextBuilder(true, engine, chain);
    }

    /** A server context for {@code engine}'s key with the PEM certificate chain in {@code chainPem}. */
    public static AsyncSslContextBuilder forServer(AsyncEngine engine, File chainPem) {
        return new AsyncSslContextBuilder(true, engine, readChain(chainPem));
    }

    /**
     * A client context whose certificate (for mutual TLS) is signed for by {@code engine}: the client's
     * CertificateVerify signature is offloaded the same way.
     */
    public static AsyncSslContextBuilder forClient(AsyncEngine engine, X509Certificate... chain) {
        return new AsyncSslContextBuilder(false, engine, chain);
    }

    /**
     * A second certificate and key of the other type, for a server that presents an ECDSA chain to clients that offer
     * ECDSA signature algorithms and an RSA chain to the others (nginx's two {@code ssl_certificate} lines). Both keys
     * are offloaded, each to its own engine; the operations of a handshake go to the engine of the certificate chosen.
     * One key must be RSA and the other EC. Not with a fallback engine (it holds one key only).
     */
    public AsyncSslContextBuilder secondKey(AsyncEngine engine, X509Certificate... chain) {
        Objects.requireNonNull(engine, "engine");
        X509Certificate[] second = requireChain(chain, "chain", "the second engine's key");
        if (!isServer()) {
            throw new IllegalStateException("secondKey is for server contexts: a client presents one certificate");
        }
        String first = KeylessKeyManager.keyType(chain()[0].getPublicKey());
        String other = KeylessKeyManager.keyType(second[0].getPublicKey());
        if (!(first.equals("RSA") && other.equals("EC") || first.equals("EC") && other.equals("RSA"))) {
            throw new IllegalArgumentException("secondKey: the two certificates have keys of type " + first + " and "
                    + other + "; give one RSA and one EC (ECDSA) certificate");
        }
        this.secondEngine = engine;
        this.secondChain = second;
        return this;
    }

    /** A second key from a PEM certificate chain, as {@link #secondKey(AsyncEngine, X509Certificate...)}. */
    public AsyncSslContextBuilder secondKey(AsyncEngine engine, File chainPem) {
        return secondKey(engine, readChain(chainPem));
    }

    /**
     * The TLS implementation: {@link SslProvider#OPENSSL} (BoringSSL, the default: handshakes pause and resume) or
     * {@link SslProvider#JDK} (the JDK's engine cannot pause: its delegated tasks, which sign, run on the engine's
     * worker pool instead; needs {@link #jdkPrivateKey}).
     */
    public AsyncSslContextBuilder sslProvider(SslProvider provider) {
        this.provider = Objects.requireNonNull(provider, "provider");
        return this;
    }

    /** The private key for the {@link SslProvider#JDK} path only, which signs inside the JDK's delegated tasks. */
    public AsyncSslContextBuilder jdkPrivateKey(PrivateKey key) {
        this.jdkKey = Objects.requireNonNull(key, "key");
        return this;
    }

    /** The TLS versions to enable, for example "TLSv1.3", "TLSv1.2". */
    public AsyncSslContextBuilder protocols(String... protocols) {
        this.protocols = Objects.requireNonNull(protocols, "protocols").clone();
        return this;
    }

    /** The cipher suites to enable (OpenSSL or IANA names as Netty accepts them). */
    public AsyncSslContextBuilder ciphers(Iterable<String> ciphers) {
        this.ciphers = Objects.requireNonNull(ciphers, "ciphers");
        return this;
    }

    /** ALPN settings. */
    public AsyncSslContextBuilder applicationProtocolConfig(ApplicationProtocolConfig apn) {
        this.apn = Objects.requireNonNull(apn, "apn");
        return this;
    }

    /**
     * Anything else Netty's builder offers (session cache, OCSP, ...). Customizers run before the builder applies its
     * own key material: a private key or key manager set by a customizer is replaced by the keyless one, and the
     * key-method options ({@code ASYNC_PRIVATE_KEY_METHOD}, {@code PRIVATE_KEY_METHOD}, {@code USE_TASKS}) are set
     * afresh, so that no customizer can make BoringSSL sign by itself or crash the JVM. Give the key to the engine.
     */
    public AsyncSslContextBuilder customize(Consumer<SslContextBuilder> customizer) {
        customizers.add(Objects.requireNonNull(customizer, "customizer"));
        return this;
    }

    /**
     * Refuses the key-method options, which this builder sets itself, and {@code USE_TASKS=false}, which crashes the
     * JVM with a key method.
     */
    @Override
    protected String refusal(SslContextOption<?> option, Object value) {
        if (option == OpenSslContextOption.ASYNC_PRIVATE_KEY_METHOD
                || option == OpenSslContextOption.PRIVATE_KEY_METHOD) {
            return "option " + option + " is set by AsyncSslContextBuilder itself; remove it (the engine performs the "
                    + "private-key operations)";
        }
        if (option == OpenSslContextOption.USE_TASKS && Boolean.FALSE.equals(value)) {
            return "option OpenSslContextOption.USE_TASKS=false with an async private-key method crashes the JVM in "
                    + "netty-tcnative; remove the option";
        }
        return null;
    }

    @Override
    public AsyncSslContext build() throws SSLException {
        checkEngineKeys();
        if (secondEngine != null) {
            KeyMatch.requireEngineMatches(secondEngine, secondChain[0], "second engine");
        }
        if (provider == SslProvider.JDK) {
            if (secondEngine != null) {
                throw new IllegalStateException("secondKey needs SslProvider.OPENSSL (BoringSSL)");
            }
            return buildJdk();
        }
        checkBoringSsl();
        checkUseTasks();
        OffloadConfig config = config();
        if (secondEngine != null && config.fallbackEngine() != null) {
            throw new IllegalStateException("a fallback engine holds one key; with secondKey(...) leave "
                    + "OffloadConfig.fallbackEngine unset");
        }
        AsyncPrivateKeyMethodAdapter method = new AsyncPrivateKeyMethodAdapter(engine(), secondEngine, config,
                inlinePolicy().resolve(engine()));
        KeylessKeyManager keyManager = secondEngine == null ? new KeylessKeyManager(chain())
                : new KeylessKeyManager(chain(), secondChain);
        SslContextBuilder b = isServer() ? SslContextBuilder.forServer(keyManager)
                : SslContextBuilder.forClient().keyManager(keyManager);
        applyTo(b);
        runCustomizers(b);
        // After the customizers, so that whatever they set, BoringSSL has no key and every operation reaches the
        // engine. SslContextBuilder has no getters to check what they set (only reflection into its private fields
        // could), so the keyless material and the key-method options are enforced by applying them last.
        b.keyManager(keyManager);
        b.sslProvider(SslProvider.OPENSSL);
        b.option(OpenSslContextOption.PRIVATE_KEY_METHOD, null);
        b.option(OpenSslContextOption.USE_TASKS, null);
        b.option(OpenSslContextOption.ASYNC_PRIVATE_KEY_METHOD, method);
        return new AsyncSslContext(b.build(), engine(), config, method);
    }

    private AsyncSslContext buildJdk() throws SSLException {
        AsyncEngine engine = engine();
        if (jdkKey == null) {
            throw new IllegalStateException("SslProvider.JDK cannot pause a handshake, so it signs in delegated tasks "
                    + "with a key in memory: call jdkPrivateKey(key), or use SslProvider.OPENSSL to keep the key in "
                    + "the engine");
        }
        if (engine.taskExecutor() == null) {
            throw new IllegalStateException("engine '" + engine.name() + "' has no task executor for the JDK "
                    + "provider's delegated tasks; use SslProvider.OPENSSL with this engine");
        }
        checkJdkKeyMatches();
        SslContextBuilder b = isServer() ? SslContextBuilder.forServer(jdkKey, chain())
                : SslContextBuilder.forClient().keyManager(jdkKey, chain());
        b.sslProvider(SslProvider.JDK);
        applyTo(b);
        runCustomizers(b);
        return new AsyncSslContext(b.build(), engine, config(), null);
    }

    private void applyTo(SslContextBuilder b) {
        if (protocols != null) {
            b.protocols(protocols);
        }
        if (ciphers != null) {
            b.ciphers(ciphers);
        }
        if (apn != null) {
            b.applicationProtocolConfig(apn);
        }
        applyCommon(b::clientAuth, b::trustManager, b::trustManager, b::option);
    }

    private void runCustomizers(SslContextBuilder b) {
        for (Consumer<SslContextBuilder> c : customizers) {
            c.accept(b);
        }
    }

    /** Signs a random challenge with the JDK-path key and verifies it with the certificate's key. */
    private void checkJdkKeyMatches() {
        X509Certificate leaf = chain()[0];
        PublicKey certKey = leaf.getPublicKey();
        boolean matches;
        try {
            matches = KeyMatch.matches(jdkKey, certKey);
        } catch (GeneralSecurityException | RuntimeException e) {
            matches = false;
        }
        if (!matches) {
            throw new IllegalStateException("jdkPrivateKey (" + jdkKey.getAlgorithm() + ") does not match the "
                    + "certificate " + leaf.getSubjectX500Principal().getName() + " (" + certKey.getAlgorithm()
                    + "); give the private key of that certificate");
        }
    }

    static void checkBoringSsl() {
        boolean available = OpenSsl.isAvailable();
        checkBoringSsl(available, available ? null : OpenSsl.unavailabilityCause(),
                available && SslProvider.isOptionSupported(SslProvider.OPENSSL,
                        OpenSslContextOption.ASYNC_PRIVATE_KEY_METHOD),
                available ? OpenSsl.versionString() : null, TcnativeVersions.onClassPath());
    }

    /** The refusals for a missing TLS library or one without async key methods, apart from how they are detected. */
    static void checkBoringSsl(boolean available, Throwable unavailabilityCause, boolean asyncKeyMethods,
                               String version, TcnativeVersions versions) {
        if (!available) {
            String mixed = versions.mismatch();
            if (mixed != null) {
                throw new IllegalStateException(mixed + "; cause: " + unavailabilityCause, unavailabilityCause);
            }
            throw new IllegalStateException("BoringSSL is not available: add io.netty:netty-tcnative-boringssl-static "
                    + "(classifier for your platform) to the class path" + versions.describe() + "; cause: "
                    + unavailabilityCause, unavailabilityCause);
        }
        if (!asyncKeyMethods) {
            throw new IllegalStateException("the loaded native TLS library (" + version + ") has no async "
                    + "private-key methods; use netty-tcnative-boringssl-static, not an OpenSSL-based tcnative");
        }
    }

    static void checkUseTasks() {
        String useTasks = System.getProperty(USE_TASKS_PROPERTY);
        if (useTasks != null && !Boolean.parseBoolean(useTasks.trim())) {
            throw new IllegalStateException("-D" + USE_TASKS_PROPERTY + "=" + useTasks + " with an async private-key "
                    + "method crashes the JVM in netty-tcnative; remove that system property");
        }
    }
}
