package io.asyncctx.bench.jmh;

import io.asyncctx.engine.AbstractAsyncEngine;
import io.asyncctx.engine.PendingOperation;

import java.security.GeneralSecurityException;
import java.security.KeyPairGenerator;
import java.security.PublicKey;

/**
 * A minimal engine for the resume benchmarks: it keeps each offered operation and never completes it by itself; the
 * benchmark thread completes it on demand ({@link PendingOperation#complete}, or {@code completeQuietly} and one
 * {@code signal()} for a batch). All of the library's signalling (callback, per-ctx or shared eventfd) is that of
 * {@link AbstractAsyncEngine}.
 *
 * <p>Threading: {@link #offer} and {@link #takeOffered()} run on the one event loop that submits (not thread-safe
 * between loops); the taken operation is then handed to the benchmark thread through a volatile field.
 */
final class ManualEngine extends AbstractAsyncEngine {

    private final PublicKey publicKey;
    private PendingOperation offered;

    ManualEngine(FdMode fdMode) {
        super("manual", fdMode);
        try {
            // Not used for any TLS here; present because the SPI has it.
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(256);
            this.publicKey = g.generateKeyPair().getPublic();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot generate an EC key pair", e);
        }
    }

    @Override
    public PublicKey publicKey() {
        return publicKey;
    }

    @Override
    protected boolean offer(PendingOperation operation) {
        offered = operation;
        return true;
    }

    /** The operation offered by the last submit on the loop. Loop thread. */
    PendingOperation takeOffered() {
        PendingOperation p = offered;
        if (p == null) {
            throw new IllegalStateException("the engine was offered no operation (the submit failed at once?)");
        }
        offered = null;
        return p;
    }
}
