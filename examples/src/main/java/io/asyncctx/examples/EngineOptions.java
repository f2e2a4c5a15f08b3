package io.asyncctx.examples;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.engine.PemKeys;
import io.asyncctx.engine.SoftwareEngine;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import picocli.CommandLine.Option;

/**
 * The flags that choose the engine and the key, shared by the server and the demo.
 *
 * <p>Threading: filled by picocli on the main thread, then read there.
 */
final class EngineOptions {

    @Option(names = "--engine", description = "software | simulated | pkcs11 (default: ${DEFAULT-VALUE}).")
    String engine = "software";

    @Option(names = "--cert", description = "PEM certificate chain (default: a fresh self-signed certificate).")
    Path cert;

    @Option(names = "--key", description = "PEM private key of --cert (PKCS#8 or traditional RSA/EC).")
    Path key;

    @Option(names = "--key-type", description = "Key of the generated certificate: rsa | ec | p384 | ed25519 "
            + "(default: ${DEFAULT-VALUE}).")
    String keyType = "rsa";

    @Option(names = "--workers", description = "Worker threads of the software engine (default: cores).")
    int workers = Runtime.getRuntime().availableProcessors();

    @Option(names = "--provider", description = "accp | jdk: crypto provider of the software engine "
            + "(default: accp when it loads).")
    String provider;

    KeyMaterial keyMaterial() {
        if ((cert == null) != (key == null)) {
            throw new BadFlagException("give --cert and --key together (or neither, for a self-signed certificate)");
        }
        if (cert == null) {
            return KeyMaterial.selfSigned(keyType);
        }
        requireReadable(cert, "--cert");
        requireReadable(key, "--key");
        try {
            X509Certificate[] chain = PemKeys.readCertificates(cert).toArray(new X509Certificate[0]);
            PrivateKey pk = PemKeys.readPrivateKey(key);
            return new KeyMaterial(chain, pk);
        } catch (RuntimeException e) {
            throw new BadFlagException(e.getMessage());
        } catch (Exception e) {
            throw new BadFlagException(e.getMessage());
        }
    }

    AsyncEngine createEngine(KeyMaterial keys) {
        if (workers < 1) {
            throw new BadFlagException("--workers " + workers + ": expected at least 1");
        }
        return switch (engine) {
            case "software" -> SoftwareEngine.builder().keyPair(keys.keyPair()).workers(workers)
                    .provider(providerChoice()).build();
            default -> throw new BadFlagException("--engine " + engine + ": expected software, simulated or pkcs11");
        };
    }

    private CryptoProviders.Choice providerChoice() {
        if (provider == null) {
            return CryptoProviders.Choice.AUTO;
        }
        return switch (provider) {
            case "accp" -> CryptoProviders.Choice.ACCP;
            case "jdk" -> CryptoProviders.Choice.JDK;
            default -> throw new BadFlagException("--provider " + provider + ": expected accp or jdk");
        };
    }

    static void requireReadable(Path p, String flag) {
        if (!Files.isReadable(p)) {
            throw new BadFlagException(flag + " " + p + ": no such readable file");
        }
    }
}
