package io.asyncctx.frameworks;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.AsyncSslContextBuilder;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ApplicationProtocolConfig.Protocol;
import io.netty.handler.ssl.ApplicationProtocolConfig.SelectedListenerFailureBehavior;
import io.netty.handler.ssl.ApplicationProtocolConfig.SelectorFailureBehavior;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;

import java.util.Objects;
import javax.net.ssl.SSLException;

/**
 * What every example needs before it hands a context to its framework: a fresh self-signed certificate whose key goes
 * to a {@link SoftwareEngine}, and the {@link AsyncSslContext} for that engine, with the ALPN protocols the framework
 * speaks. A real server would read its chain and key from files ({@code SoftwareEngine.builder().pem(key, chain)}).
 *
 * <p>Threading: static methods, any thread.
 */
public final class ExampleTls {

    private ExampleTls() {
    }

    /** A self-signed certificate for {@code name} (also its only DNS name) and 127.0.0.1. */
    public static X509Bundle selfSigned(String name, CertificateBuilder.Algorithm algorithm) throws Exception {
        Objects.requireNonNull(name, "name");
        return new CertificateBuilder().subject("CN=" + name).addSanDnsName(name).addSanIpAddress("127.0.0.1")
                .setIsCertificateAuthority(true).algorithm(algorithm).buildSelfSigned();
    }

    /** An engine that holds {@code cert}'s key and signs on its own worker threads. Close it after the server. */
    public static SoftwareEngine engine(X509Bundle cert) {
        return SoftwareEngine.builder().keyPair(cert.getKeyPair()).workers(2).build();
    }

    /**
     * A server context for {@code engine}'s key and {@code cert}; with ALPN when {@code alpn} names protocols, in the
     * server's order of preference.
     */
    public static AsyncSslContext context(AsyncEngine engine, X509Bundle cert, String... alpn) throws SSLException {
        AsyncSslContextBuilder b = AsyncSslContextBuilder.forServer(engine, cert.getCertificate());
        if (alpn.length > 0) {
            b.applicationProtocolConfig(new ApplicationProtocolConfig(Protocol.ALPN,
                    SelectorFailureBehavior.NO_ADVERTISE, SelectedListenerFailureBehavior.ACCEPT, alpn));
        }
        return b.build();
    }
}
