package io.asyncctx.examples;

import io.asyncctx.engine.PemKeys;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ClientAuth;

import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Option;

/**
 * The {@code server} command's TLS flags (apart from the key): cipher suites, groups, cipher order, ALPN, client
 * certificates. Turns them into {@link TlsSettings}.
 *
 * <p>Threading: filled by picocli on the main thread, read once there.
 */
final class TlsOptions {

    @Option(names = "--ciphers", split = ",", paramLabel = "SUITE", description = "Cipher suites, comma-separated, "
            + "IANA or OpenSSL names, in the server's order (default: the ECDHE AEAD suites nginx accepts: "
            + "ECDHE-{ECDSA,RSA}-{AES128-GCM-SHA256,AES256-GCM-SHA384,CHACHA20-POLY1305}, and TLS 1.3's three). As nginx's "
            + "ssl_ciphers, a list without TLS 1.3 suites leaves TLS 1.3 on with its three; --tls-versions TLSv1.2 "
            + "turns TLS 1.3 off.")
    List<String> ciphers;

    @Option(names = "--groups", split = ",", paramLabel = "GROUP", description = "Key-exchange groups, comma-separated "
            + "in preference order, e.g. X25519,P-256 (default: Netty's, X25519MLKEM768,X25519,P-256,P-384,P-521).")
    List<String> groups;

    @Option(names = "--cipher-order", description = "server | client: whose cipher-suite order wins in TLS 1.2 "
            + "(default: ${DEFAULT-VALUE}, as Netty; nginx's default is client).")
    String cipherOrder = "server";

    @Option(names = "--tls-versions", split = ",", paramLabel = "VERSION",
            description = "TLS versions, comma-separated (default: TLSv1.3,TLSv1.2).")
    List<String> versions = List.of("TLSv1.3", "TLSv1.2");

    @Option(names = "--no-http2", description = "Offer only http/1.1 in ALPN (default: h2 and http/1.1).")
    boolean noHttp2;

    @Option(names = "--client-ca", paramLabel = "FILE", description = "PEM CA certificates that client certificates "
            + "must chain to; asks clients for a certificate (mutual TLS).")
    Path clientCa;

    @Option(names = "--client-auth", description = "require | optional: with --client-ca, whether a client without a "
            + "certificate is refused (default: require).")
    String clientAuth;

    TlsSettings settings() {
        boolean serverOrder = switch (cipherOrder) {
            case "server" -> true;
            case "client" -> false;
            default -> throw new BadFlagException("--cipher-order " + cipherOrder + ": expected server or client");
        };
        ClientAuth auth = ClientAuth.NONE;
        X509Certificate[] ca = null;
        if (clientCa != null) {
            EngineOptions.requireReadable(clientCa, "--client-ca");
            try {
                ca = PemKeys.readCertificates(clientCa).toArray(new X509Certificate[0]);
            } catch (Exception e) {
                throw new BadFlagException("--client-ca " + clientCa + ": " + e.getMessage());
            }
            auth = ClientAuth.REQUIRE;
        }
        if (clientAuth != null) {
            if (clientCa == null) {
                throw new BadFlagException("--client-auth " + clientAuth + " needs --client-ca FILE (the CA "
                        + "certificates that client certificates must chain to)");
            }
            auth = switch (clientAuth.toLowerCase(Locale.ROOT)) {
                case "require" -> ClientAuth.REQUIRE;
                case "optional" -> ClientAuth.OPTIONAL;
                default -> throw new BadFlagException("--client-auth " + clientAuth + ": expected require or optional");
            };
        }
        List<String> alpn = new ArrayList<>();
        if (!noHttp2) {
            alpn.add(ApplicationProtocolNames.HTTP_2);
        }
        alpn.add(ApplicationProtocolNames.HTTP_1_1);
        for (String v : versions) {
            if (!Arrays.asList("TLSv1.3", "TLSv1.2").contains(v)) {
                throw new BadFlagException("--tls-versions " + v + ": expected TLSv1.3 and/or TLSv1.2");
            }
        }
        return new TlsSettings(versions, ciphers == null ? TlsSettings.DEFAULT_CIPHERS : ciphers, groups, serverOrder,
                alpn, auth, ca);
    }
}
