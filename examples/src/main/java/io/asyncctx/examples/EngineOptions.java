package io.asyncctx.examples;

import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.PemKeys;
import io.asyncctx.testkit.SimulatedAcceleratorEngine;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.engine.pkcs11.Pkcs11Engine;
import io.asyncctx.engine.pkcs11.Pkcs11EngineBuilder;
import io.asyncctx.engine.pkcs11.Pkcs11Uri;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Arrays;
import picocli.CommandLine.Option;

/**
 * The flags that choose the engine and the key, shared by the server and the demo.
 *
 * <ul>
 *   <li>{@code software}: the key in memory (--cert/--key, or a generated self-signed one), signed by worker
 *   threads;</li>
 *   <li>{@code simulated}: the same key, signed by a simulated accelerator with a fixed latency and a bounded ring
 *   (--latency-ms, --ring-size);</li>
 *   <li>{@code pkcs11}: the key on a PKCS#11 token (--pkcs11-library, --pkcs11-token or --pkcs11-slot,
 *   --pkcs11-pin-file or --pkcs11-pin-env, --pkcs11-key-label); the certificate chain comes from the token unless
 *   --cert is given; or {@code --key pkcs11:token=...;object=...} (RFC 7512), which implies pkcs11. The PIN is never
 *   taken from the command line.</li>
 * </ul>
 *
 * <p>Use: {@link #keyMaterial()} first, then {@link #createEngine(KeyMaterial)} with its result, and close that
 * engine. With {@code pkcs11}, {@link #keyMaterial()} already opens the engine (the chain is on the token) and
 * {@link #createEngine} hands that engine over.
 *
 * <p>Threading: filled by picocli on the main thread, then read there.
 */
final class EngineOptions {

    @Option(names = "--engine", converter = Choices.EngineChoice.class,
            completionCandidates = Choices.EngineChoice.class,
            description = "software | simulated | pkcs11 (default: ${DEFAULT-VALUE}).")
    Choices.EngineKind engine = Choices.EngineKind.SOFTWARE;

    @Option(names = "--cert", description = "PEM certificate chain (default: a fresh self-signed certificate; with "
            + "pkcs11: the chain stored on the token).")
    Path cert;

    @Option(names = "--key", description = "PEM private key of --cert (PKCS#8 or traditional RSA/EC), or a PKCS#11 "
            + "URI of a key on a token ('pkcs11:token=web;object=tls-key;type=private', implies --engine pkcs11).")
    String keyArg;

    /** --key as a file, or null (also when it is a PKCS#11 URI). */
    private Path key;

    /** --key as a PKCS#11 URI, or null. */
    private String keyUri;

    @Option(names = "--key-type", description = "Key of the generated certificate: rsa | ec | p384 | ed25519 "
            + "(default: rsa).", converter = Choices.KeyTypeChoice.class,
            completionCandidates = Choices.KeyTypeChoice.class)
    Choices.KeyType keyType = Choices.KeyType.RSA;

    @Option(names = "--workers", description = "Worker threads of the engine: software workers, simulated signers, "
            + "pkcs11 token sessions (default: cores).")
    int workers = Runtime.getRuntime().availableProcessors();

    @Option(names = "--provider", description = "accp | jdk: crypto provider of the software and simulated engines "
            + "(default: accp when it loads).", converter = Choices.ProviderChoice.class,
            completionCandidates = Choices.ProviderChoice.class)
    CryptoProviders.Choice provider;

    @Option(names = "--fd-mode", description = "shared | per-ctx: one eventfd per event loop, or one per connection "
            + "(default: shared).", converter = Choices.FdModeChoice.class,
            completionCandidates = Choices.FdModeChoice.class)
    FdMode fdMode;

    @Option(names = "--latency-ms", description = "simulated: service latency of every key operation in ms "
            + "(default: 1).")
    Integer latencyMs;

    @Option(names = "--ring-size", description = "simulated: operations in flight at most; beyond that the engine "
            + "answers EAGAIN (default: 1024).")
    Integer ringSize;

    @Option(names = "--pkcs11-library", description = "pkcs11: the token's PKCS#11 module, such as "
            + "/usr/lib/softhsm/libsofthsm2.so.")
    Path pkcs11Library;

    @Option(names = "--pkcs11-token", description = "pkcs11: label of the token.")
    String pkcs11Token;

    @Option(names = "--pkcs11-slot", description = "pkcs11: slot id of the token (instead of --pkcs11-token).")
    Long pkcs11Slot;

    @Option(names = "--pkcs11-pin-file", description = "pkcs11: file holding the user PIN (readable by the server's "
            + "user only).")
    Path pkcs11PinFile;

    @Option(names = "--pkcs11-pin-env", description = "pkcs11: environment variable holding the user PIN.")
    String pkcs11PinEnv;

    @Option(names = "--pkcs11-key-label", description = "pkcs11: label of the private key (and of its certificate "
            + "object) on the token.")
    String pkcs11KeyLabel;

    /** Only to refuse it with an explanation: a PIN on the command line is visible in ps and shell histories. */
    @Option(names = {"--pkcs11-pin", "--pin"}, hidden = true)
    String pinOnCommandLine;

    /** The pkcs11 engine opened by {@link #keyMaterial()}, until {@link #createEngine} hands it over. */
    private Pkcs11Engine openedPkcs11;

    KeyMaterial keyMaterial() {
        splitKeyArg();
        checkEngineFlags();
        if (engine == Choices.EngineKind.PKCS11) {
            return pkcs11KeyMaterial();
        }
        if ((cert == null) != (key == null)) {
            throw new BadFlagException("give --cert and --key together (or neither, for a self-signed certificate)");
        }
        if (cert == null) {
            return KeyMaterial.selfSigned(keyType);
        }
        requireReadable(cert, "--cert");
        requireReadable(key, "--key");
        try {
            X509Certificate[] chain = readChain(cert);
            PrivateKey pk = PemKeys.readPrivateKey(key);
            return new KeyMaterial(chain, pk);
        } catch (RuntimeException e) {
            throw new BadFlagException(e.getMessage());
        } catch (Exception e) {
            throw new BadFlagException(e.getMessage());
        }
    }

    AsyncEngine createEngine(KeyMaterial keys) {
        splitKeyArg();
        checkEngineFlags();
        return switch (engine) {
            case SOFTWARE -> {
                try {
                    yield SoftwareEngine.builder().keyPair(keys.keyPair()).workers(workers)
                            .provider(providerChoice()).fdMode(fdModeChoice()).build();
                } catch (IllegalArgumentException | IllegalStateException e) {
                    // a key that does not belong to the certificate: one line, exit 2, like every other bad input
                    throw new BadFlagException((cert == null ? "" : "--cert " + cert + " and --key " + key + ": ")
                            + e.getMessage());
                }
            }
            case SIMULATED -> createSimulated(keys);
            case PKCS11 -> {
                Pkcs11Engine e = openedPkcs11 != null ? openedPkcs11 : openPkcs11();
                openedPkcs11 = null;
                yield e;
            }
        };
    }

    /**
     * With {@code --site}: how each site's key gets its engine. A PEM key is signed by {@code --engine} (software or
     * simulated, with --workers, --provider, --fd-mode, --latency-ms, --ring-size); a {@code pkcs11:} URI by a PKCS#11
     * engine on that key (--pkcs11-library, --pkcs11-pin-file or --pkcs11-pin-env apply when the URI has no
     * module-path or pin-source), serving the site's CERT. Refuses the single-key flags (--cert, --key,
     * --pkcs11-token/-slot/-key-label) with one line.
     */
    Sites.KeySource siteKeys() {
        if (cert != null || keyArg != null) {
            throw new BadFlagException("--cert and --key serve one certificate; with --site every site names its own "
                    + "(--site NAME,CERT,KEY): drop --cert and --key");
        }
        if (pinOnCommandLine != null) {
            checkEngineFlags(); // refuses it with the explanation
        }
        if (workers < 1) {
            throw new BadFlagException("--workers " + workers + ": expected at least 1");
        }
        if (latencyMs != null && latencyMs < 0 || ringSize != null && ringSize < 1) {
            throw new BadFlagException("--latency-ms expects 0 or more, --ring-size at least 1");
        }
        if (pkcs11PinFile != null && pkcs11PinEnv != null) {
            throw new BadFlagException("give one of --pkcs11-pin-file and --pkcs11-pin-env");
        }
        if (engine == Choices.EngineKind.PKCS11) {
            throw new BadFlagException("--engine pkcs11 with --site: give each key on a token as a pkcs11: URI in its "
                    + "--site (NAME,CERT,'pkcs11:token=...;object=...'); --engine chooses the engine of PEM keys "
                    + "(software or simulated)");
        }
        if (engine != Choices.EngineKind.SIMULATED && (latencyMs != null || ringSize != null)) {
            throw new BadFlagException("--latency-ms and --ring-size configure --engine simulated (engine is "
                    + engine + ")");
        }
        if (pkcs11Token != null || pkcs11Slot != null || pkcs11KeyLabel != null) {
            throw new BadFlagException("--pkcs11-token, --pkcs11-slot and --pkcs11-key-label name one key; with --site "
                    + "name each key by its pkcs11: URI (token=...;object=...)");
        }
        return this::openSiteKey;
    }

    private AsyncEngine openSiteKey(String name, Path certFile, String keySpec) throws java.io.IOException {
        X509Certificate[] chain;
        try {
            chain = readChain(certFile);
        } catch (java.io.IOException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalArgumentException(certFile + ": " + e.getMessage(), e);
        }
        if (Pkcs11Uri.isPkcs11Uri(keySpec)) {
            Pkcs11EngineBuilder b = Pkcs11Engine.builder().name("pkcs11:" + name).fdMode(fdModeChoice())
                    .uri(keySpec).threads(workers).certificateChain(chain);
            Pkcs11Uri uri = Pkcs11Uri.parse(keySpec);
            if (uri.modulePath() == null) {
                if (pkcs11Library == null) {
                    throw new IllegalArgumentException(keySpec + ": no module-path= in the URI and no "
                            + "--pkcs11-library PATH (such as /usr/lib/softhsm/libsofthsm2.so)");
                }
                b.modulePath(pkcs11Library);
            }
            if (uri.pinFile() == null) {
                if (pkcs11PinFile != null) {
                    b.pinFile(pkcs11PinFile);
                } else if (pkcs11PinEnv != null) {
                    b.pinEnvironmentVariable(pkcs11PinEnv);
                } else {
                    throw new IllegalArgumentException(keySpec + ": no pin-source=file:FILE in the URI and no "
                            + "--pkcs11-pin-file FILE or --pkcs11-pin-env VAR");
                }
            }
            Pkcs11Engine opened = b.build();
            if (!Arrays.equals(chain[0].getPublicKey().getEncoded(), opened.publicKey().getEncoded())) {
                opened.close();
                throw new IllegalArgumentException(certFile + ": its certificate is not for the key " + keySpec);
            }
            return opened;
        }
        Path keyFile = Path.of(keySpec);
        PrivateKey pk;
        try {
            pk = PemKeys.readPrivateKey(keyFile);
        } catch (java.io.IOException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalArgumentException(keyFile + ": " + e.getMessage(), e);
        }
        KeyMaterial km = new KeyMaterial(chain, pk);
        if (engine == Choices.EngineKind.SIMULATED) {
            return createSimulated(km);
        }
        return SoftwareEngine.builder().keyPair(km.keyPair()).workers(workers).name("software:" + name)
                .provider(providerChoice()).fdMode(fdModeChoice()).build();
    }

    private AsyncEngine createSimulated(KeyMaterial keys) {
        if (keys.privateKey() == null) {
            throw new BadFlagException("--engine simulated signs with a key in memory; give --cert and --key, or "
                    + "neither for a generated key");
        }
        try {
            JcaKeySigner signer = JcaKeySigner.withJdkFallback(keys.privateKey(), keys.publicKey(),
                    CryptoProviders.select(providerChoice()));
            return SimulatedAcceleratorEngine.builder()
                    .latency(Duration.ofMillis(latencyMs == null ? 1 : latencyMs))
                    .ringSize(ringSize == null ? 1024 : ringSize)
                    .fdMode(fdModeChoice())
                    .signerThreads(workers)
                    .signer(signer)
                    .build();
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new BadFlagException("--engine simulated: " + e.getMessage());
        }
    }

    /** A {@code pkcs11:} URI in --key names a key on a token and implies --engine pkcs11. */
    private void splitKeyArg() {
        key = null;
        keyUri = null;
        if (keyArg == null) {
            return;
        }
        if (Pkcs11Uri.isPkcs11Uri(keyArg)) {
            keyUri = keyArg;
            if (engine == Choices.EngineKind.SIMULATED) {
                throw new BadFlagException("--key " + keyArg + ": a PKCS#11 URI needs --engine pkcs11 (engine is "
                        + engine + ")");
            }
            engine = Choices.EngineKind.PKCS11;
        } else {
            key = Path.of(keyArg);
        }
    }

    private KeyMaterial pkcs11KeyMaterial() {
        if (key != null) {
            throw new BadFlagException("--key " + key + ": with --engine pkcs11 the private key stays on the token; "
                    + "drop --key (give --cert alone to serve another chain for the token's key)");
        }
        X509Certificate[] chain = null;
        if (cert != null) {
            requireReadable(cert, "--cert");
            try {
                chain = readChain(cert);
            } catch (Exception e) {
                throw new BadFlagException("--cert " + cert + ": " + e.getMessage());
            }
        }
        Pkcs11Engine opened = openPkcs11();
        boolean success = false;
        try {
            if (chain == null) {
                chain = opened.certificateChain();
            } else if (!Arrays.equals(chain[0].getPublicKey().getEncoded(), opened.publicKey().getEncoded())) {
                throw new BadFlagException("--cert " + cert + ": its certificate is not for the key on the token; "
                        + "give the certificate of that key, or drop --cert to use the chain stored on the token");
            }
            openedPkcs11 = opened;
            success = true;
            return new KeyMaterial(chain, null);
        } finally {
            if (!success) {
                opened.close();
            }
        }
    }

    private Pkcs11Engine openPkcs11() {
        Pkcs11EngineBuilder b = Pkcs11Engine.builder().name("pkcs11").fdMode(fdModeChoice());
        Pkcs11Uri uri = null;
        if (keyUri != null) {
            try {
                uri = Pkcs11Uri.parse(keyUri);
                b.uri(keyUri);
            } catch (IllegalArgumentException e) {
                throw new BadFlagException("--key: " + e.getMessage());
            }
        }
        if (pkcs11Library == null && (uri == null || uri.modulePath() == null)) {
            throw new BadFlagException("--engine pkcs11 needs --pkcs11-library PATH (or module-path= in the --key "
                    + "URI): the token's PKCS#11 module, such as /usr/lib/softhsm/libsofthsm2.so");
        }
        if (uri == null && (pkcs11Token == null) == (pkcs11Slot == null)) {
            throw new BadFlagException("--engine pkcs11 needs exactly one of --pkcs11-token LABEL and --pkcs11-slot N "
                    + "(list them with: pkcs11-tool --module " + pkcs11Library + " --list-slots), or --key "
                    + "'pkcs11:token=LABEL;object=KEY'");
        }
        if (pkcs11PinFile != null && pkcs11PinEnv != null
                || pkcs11PinFile == null && pkcs11PinEnv == null && (uri == null || uri.pinFile() == null)) {
            throw new BadFlagException("--engine pkcs11 needs exactly one of --pkcs11-pin-file FILE and "
                    + "--pkcs11-pin-env VAR (or pin-source=file:FILE in the --key URI) for the token's user PIN");
        }
        if (uri == null && pkcs11KeyLabel == null) {
            throw new BadFlagException("--engine pkcs11 needs --pkcs11-key-label LABEL (or --key "
                    + "'pkcs11:token=LABEL;object=KEY'): the label of the private key on the token (list them with: "
                    + "pkcs11-tool --module " + pkcs11Library + " --login --list-objects --type privkey)");
        }
        try {
            b.threads(workers);
            if (pkcs11Library != null) {
                b.modulePath(pkcs11Library);
            }
            if (pkcs11KeyLabel != null) {
                b.keyLabel(pkcs11KeyLabel);
            }
            if (pkcs11Token != null) {
                b.tokenLabel(pkcs11Token);
            } else if (pkcs11Slot != null) {
                b.slot(pkcs11Slot);
            }
            if (pkcs11PinFile != null) {
                b.pinFile(pkcs11PinFile);
            } else if (pkcs11PinEnv != null) {
                b.pinEnvironmentVariable(pkcs11PinEnv);
            }
            if (cert != null) {
                b.certificateChain(readChain(cert));
            }
            return b.build();
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new BadFlagException("--engine pkcs11: " + e.getMessage());
        } catch (BadFlagException e) {
            throw e;
        } catch (Exception e) {
            throw new BadFlagException("--cert " + cert + ": " + e.getMessage());
        }
    }

    /** Refuses an unknown engine, flags of another engine than the chosen one, and a PIN on the command line. */
    private void checkEngineFlags() {
        if (pinOnCommandLine != null) {
            throw new BadFlagException("a PIN on the command line is visible to every user of the machine (ps, shell "
                    + "history); put it in a file readable by the server only (--pkcs11-pin-file FILE) or in an "
                    + "environment variable (--pkcs11-pin-env VAR)");
        }
        if (workers < 1) {
            throw new BadFlagException("--workers " + workers + ": expected at least 1");
        }
        if (engine != Choices.EngineKind.SIMULATED && (latencyMs != null || ringSize != null)) {
            throw new BadFlagException("--latency-ms and --ring-size configure --engine simulated (engine is "
                    + engine + ")");
        }
        if (latencyMs != null && latencyMs < 0) {
            throw new BadFlagException("--latency-ms " + latencyMs + ": expected 0 or more");
        }
        if (ringSize != null && ringSize < 1) {
            throw new BadFlagException("--ring-size " + ringSize + ": expected at least 1");
        }
        boolean anyPkcs11 = pkcs11Library != null || pkcs11Token != null || pkcs11Slot != null
                || pkcs11PinFile != null || pkcs11PinEnv != null || pkcs11KeyLabel != null;
        if (engine != Choices.EngineKind.PKCS11 && anyPkcs11) {
            throw new BadFlagException("--pkcs11-* flags configure --engine pkcs11 (engine is " + engine + ")");
        }
    }

    private FdMode fdModeChoice() {
        return fdMode == null ? FdMode.SHARED_PER_LOOP : fdMode;
    }

    private CryptoProviders.Choice providerChoice() {
        return provider == null ? CryptoProviders.Choice.AUTO : provider;
    }

    private static X509Certificate[] readChain(Path pem) throws Exception {
        X509Certificate[] chain = PemKeys.readCertificates(pem).toArray(new X509Certificate[0]);
        if (chain.length == 0) {
            throw new IllegalArgumentException("no certificate in " + pem);
        }
        return chain;
    }

    static void requireReadable(Path p, String flag) {
        if (!Files.isReadable(p)) {
            throw new BadFlagException(flag + " " + p + ": no such readable file");
        }
    }
}
