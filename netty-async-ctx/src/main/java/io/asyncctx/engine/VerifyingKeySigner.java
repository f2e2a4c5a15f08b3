package io.asyncctx.engine;

import java.security.GeneralSecurityException;
import java.security.Provider;
import java.security.PublicKey;
import java.security.Signature;
import java.security.SignatureException;
import java.security.spec.AlgorithmParameterSpec;
import java.util.Objects;
import java.util.concurrent.atomic.LongAdder;

/**
 * Threading: thread-safe, like the signer it wraps; {@link #perform} blocks for the signature and its check, so
 * call it on an engine's worker, never on an event loop. The counters may be read from any thread.
 *
 * <p>A {@link KeySigner} decorator that checks every RSA signature (PKCS#1 v1.5 and PSS) with the public key before it
 * is returned, as OpenSSL and BoringSSL do after an RSA-CRT signature: a fault in the signer (a flipped bit in a CRT
 * half, a broken accelerator, a token returning garbage) would otherwise send a signature from which the private key
 * can be computed (Boneh-DeMillo-Lipton). A signature that does not verify fails the operation with a
 * {@link SignatureException} (the job ends in ERR, so a fallback engine may take it) and is counted by
 * {@link #verificationFailures()}. ECDSA, Ed25519 and decryptions pass through unchecked.
 */
public final class VerifyingKeySigner implements KeySigner {

    private final KeySigner delegate;
    private final PublicKey publicKey;
    private final Provider verifyProvider;
    private final LongAdder verified;
    private final LongAdder failures;

    /**
     * Verifies with the JDK's preferred provider for each algorithm.
     *
     * @param delegate the signer whose RSA signatures are checked; its {@link KeySigner#publicKey()} checks them
     */
    public VerifyingKeySigner(KeySigner delegate) {
        this(delegate, null);
    }

    /**
     * @param delegate the signer whose RSA signatures are checked; its {@link KeySigner#publicKey()} checks them
     * @param verifyProvider the provider that verifies, or null for the JDK's preference order; pick one other than
     *     the signer's to check the signer's provider as well
     */
    public VerifyingKeySigner(KeySigner delegate, Provider verifyProvider) {
        this(delegate, Objects.requireNonNull(delegate, "delegate").publicKey(), verifyProvider, new LongAdder(),
                new LongAdder());
    }

    private VerifyingKeySigner(KeySigner delegate, PublicKey publicKey, Provider verifyProvider, LongAdder verified,
                               LongAdder failures) {
        this.delegate = delegate;
        this.publicKey = Objects.requireNonNull(publicKey, "delegate.publicKey() returned null");
        this.verifyProvider = verifyProvider;
        this.verified = verified;
        this.failures = failures;
    }

    @Override
    public PublicKey publicKey() {
        return publicKey;
    }

    /** The wrapped signer. */
    public KeySigner delegate() {
        return delegate;
    }

    /** RSA signatures checked and found good. */
    public long signaturesVerified() {
        return verified.sum();
    }

    /** RSA signatures that did not verify (each failed its operation). */
    public long verificationFailures() {
        return failures.sum();
    }

    /**
     * Signs (or decrypts) with the wrapped signer, then checks an RSA signature with the public key.
     *
     * @throws SignatureException when the RSA signature does not verify with the public key
     */
    @Override
    public byte[] perform(KeyOperation operation) throws GeneralSecurityException {
        byte[] result = delegate.perform(operation);
        if (operation.type() != KeyOperation.Type.SIGN
                || !"RSA".equals(operation.signatureScheme().keyAlgorithm())) {
            return result;
        }
        SignatureScheme scheme = operation.signatureScheme();
        boolean ok;
        try {
            Signature v = verifyProvider == null ? Signature.getInstance(scheme.jcaAlgorithm())
                    : Signature.getInstance(scheme.jcaAlgorithm(), verifyProvider);
            AlgorithmParameterSpec params = scheme.parameters();
            if (params != null) {
                v.setParameter(params);
            }
            v.initVerify(publicKey);
            v.update(operation.input());
            ok = result != null && v.verify(result);
        } catch (SignatureException e) {
            ok = false; // a malformed signature (wrong length, out of range) is a failed check too
        }
        if (!ok) {
            failures.increment();
            throw new SignatureException("the " + scheme + " signature of the signer did not verify with the public "
                    + "key; it was withheld (a faulty signer or accelerator: check it, or use a fallback engine)");
        }
        verified.increment();
        return result;
    }

    /** A view for one worker thread over the wrapped signer's thread-confined form (same counters). */
    KeySigner threadConfined() {
        if (delegate instanceof JcaKeySigner jca) {
            return new VerifyingKeySigner(jca.threadConfined(), publicKey, verifyProvider, verified, failures);
        }
        return this;
    }

    @Override
    public String toString() {
        return "VerifyingKeySigner[" + delegate + ']';
    }
}
