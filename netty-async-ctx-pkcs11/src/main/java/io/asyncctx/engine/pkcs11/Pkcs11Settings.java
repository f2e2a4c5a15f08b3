package io.asyncctx.engine.pkcs11;

import io.asyncctx.engine.AbstractAsyncEngine.FdMode;

import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;

/**
 * What {@link Pkcs11EngineBuilder#build()} hands to the engine: the module, the token selection, the PIN source, the
 * key selection, the chain (null: read it from the token) and the engine's own settings, checked complete by the
 * builder.
 *
 * <p><b>Threading.</b> Immutable (the key id is copied in and out, the chain is an unmodifiable list); any thread.
 */
record Pkcs11Settings(String name, Path modulePath, String tokenLabel, String serial, String manufacturer,
                      String model, Long slotId, Path pinFile, String pinEnvVar, String keyLabel, byte[] keyId,
                      List<X509Certificate> chain, int threads, int queueCapacity, FdMode fdMode,
                      Duration closeTimeout) {

    Pkcs11Settings {
        keyId = keyId == null ? null : keyId.clone();
        chain = chain == null ? null : List.copyOf(chain);
    }

    @Override
    public byte[] keyId() {
        return keyId == null ? null : keyId.clone();
    }

    /** The chain as an array (a new one each call), or null. */
    X509Certificate[] chainArray() {
        return chain == null ? null : chain.toArray(new X509Certificate[0]);
    }

    /** Where the PIN comes from, for messages: "the PIN file F" or "the environment variable V". */
    String pinSourceDescription() {
        return pinFile != null ? "the PIN file " + pinFile : "the environment variable " + pinEnvVar;
    }

    /** Reads the PIN from the file or the environment variable; the caller wipes it. */
    char[] readPin() {
        return pinFile != null ? PinSource.fromFile(pinFile) : PinSource.fromEnvironment(pinEnvVar);
    }
}
