package io.asyncctx.engine;

import java.util.Objects;

/**
 * Threading: immutable once built; the input array is owned by the operation and must not be modified by anyone
 * after construction. Safe to hand from the event loop to an engine thread.
 *
 * <p>One private-key operation of a TLS handshake: a signature over a handshake message, or (TLS 1.2 static-RSA key
 * exchange only) a raw RSA decryption.
 */
public final class KeyOperation {

    /** Threading: an enum, any thread. What the operation does. */
    public enum Type {
        /** Sign {@link #input()} (the whole message, not a digest) with {@link #signatureScheme()}. */
        SIGN,
        /** Raw RSA decryption ({@code RSA/ECB/NoPadding}) of {@link #input()}. */
        DECRYPT
    }

    private final Type type;
    private final SignatureScheme scheme;
    private final byte[] input;

    private KeyOperation(Type type, SignatureScheme scheme, byte[] input) {
        this.type = type;
        this.scheme = scheme;
        this.input = Objects.requireNonNull(input, "input");
    }

    /** A signature with {@code scheme} over {@code input} (the message; the engine hashes it). */
    public static KeyOperation sign(SignatureScheme scheme, byte[] input) {
        return new KeyOperation(Type.SIGN, Objects.requireNonNull(scheme, "scheme"), input);
    }

    /** A raw RSA decryption of {@code input}. */
    public static KeyOperation decrypt(byte[] input) {
        return new KeyOperation(Type.DECRYPT, null, input);
    }

    /** SIGN or DECRYPT. */
    public Type type() {
        return type;
    }

    /** The signature scheme of a SIGN; null for DECRYPT. */
    public SignatureScheme signatureScheme() {
        return scheme;
    }

    /** The input; do not modify it. */
    public byte[] input() {
        return input;
    }

    @Override
    public String toString() {
        return type == Type.SIGN ? "sign(" + scheme + ", " + input.length + " bytes)"
                : "decrypt(" + input.length + " bytes)";
    }
}
