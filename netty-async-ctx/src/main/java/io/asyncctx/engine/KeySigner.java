package io.asyncctx.engine;

import java.security.GeneralSecurityException;
import java.security.PublicKey;

/**
 * Threading: implementations are thread-safe; {@link #perform} is called concurrently by an engine's worker threads
 * and may block for as long as the operation takes. Never call it on an event loop.
 *
 * <p>Performs private-key operations synchronously with one private key: the crypto inside an engine's worker.
 */
public interface KeySigner {

    /** The public key matching the private key. */
    PublicKey publicKey();

    /**
     * Signs or decrypts.
     *
     * @throws GeneralSecurityException when the operation fails or does not fit the key (an EC key asked to decrypt,
     *     an RSA key asked for ECDSA)
     */
    byte[] perform(KeyOperation operation) throws GeneralSecurityException;
}
