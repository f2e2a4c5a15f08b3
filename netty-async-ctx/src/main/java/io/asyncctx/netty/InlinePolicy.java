package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.engine.SignatureScheme;

import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Threading: immutable, any thread; the measurement runs once at context build time on the building thread (never an
 * event loop: it signs for real).
 *
 * <p>Which private-key operations run inline on the event loop instead of through an {@link io.asyncctx.AsyncJob}.
 * Handing an operation off costs a few microseconds of loop time (a queue, a wake-up, a resume); an ECDSA P-256 or
 * Ed25519 signature with AWS-LC costs about as much, so offloading it saves the loop nothing. A measured policy signs
 * each signature scheme of the engine's key on the building thread, and marks for inline use the schemes whose median
 * cost is below the threshold; everything slower (RSA, anything in an HSM or accelerator) still goes through jobs.
 * Only engines that offer an {@link AsyncEngine#inlineSigner()} can run anything inline; decryption never does.
 * {@link AsyncSslContextBuilder} (TCP) and {@code io.asyncctx.quic.QuicAsyncSslContextBuilder} (QUIC) measure the
 * policy once in {@code build()} (their shared key method, {@link AbstractAsyncKeyMethod}, keeps the outcome; the
 * context's {@code inlineSchemes()} reports it).
 */
public final class InlinePolicy {

    private static final InlinePolicy NEVER = new InlinePolicy(Duration.ZERO);
    private static final int WARMUP_OPS = 200;
    private static final long WARMUP_NANOS = 150_000_000L;
    private static final int TIMED_OPS = 41;

    private final Duration threshold;

    private InlinePolicy(Duration threshold) {
        this.threshold = threshold;
    }

    /** Every operation goes through a job (the default). */
    public static InlinePolicy never() {
        return NEVER;
    }

    /**
     * Runs inline the signature schemes whose measured median cost with the engine's inline signer is at most
     * {@code threshold} (for example 30 us keeps ECDSA P-256 and Ed25519 inline with AWS-LC, and RSA offloaded).
     */
    public static InlinePolicy belowMeasuredCost(Duration threshold) {
        Objects.requireNonNull(threshold, "threshold");
        if (threshold.isNegative()) {
            throw new IllegalArgumentException("threshold: " + threshold + " (expected zero or more)");
        }
        return threshold.isZero() ? NEVER : new InlinePolicy(threshold);
    }

    /** The threshold; zero for {@link #never()}. */
    public Duration threshold() {
        return threshold;
    }

    /**
     * The outcome of {@link #resolve}: the signature schemes that run inline, the median cost measured for each scheme
     * of the engine's key, and the signer that performs the inline operations. A context builder resolves its policy
     * once and keeps the decision; its key method asks {@link #isInline} for every signature.
     *
     * <p>Threading: immutable; any thread.
     */
    static final class Decision {
        private static final Decision NONE = new Decision(Collections.emptySet(), Collections.emptyMap(), null);

        private final Set<SignatureScheme> inline;
        private final Map<SignatureScheme, Long> medianNanos;
        private final KeySigner signer;

        private Decision(Set<SignatureScheme> inline, Map<SignatureScheme, Long> medianNanos, KeySigner signer) {
            this.inline = inline;
            this.medianNanos = medianNanos;
            this.signer = signer;
        }

        /** Nothing inline, nothing measured (the decision of {@link #never()} and of engines without inline signer). */
        static Decision none() {
            return NONE;
        }

        /** True when {@code scheme} runs inline (on the event loop, with {@link #signer()}). Cheap: a set lookup. */
        public boolean isInline(SignatureScheme scheme) {
            return inline.contains(scheme);
        }

        /** The schemes that run inline (unmodifiable; empty when nothing does). */
        public Set<SignatureScheme> inline() {
            return inline;
        }

        /**
         * The median nanoseconds of one signature measured for each scheme of the engine's key (unmodifiable), -1 for
         * a scheme the signer failed; empty when nothing was measured (policy {@link #never()}, or no inline signer).
         */
        public Map<SignatureScheme, Long> medianNanos() {
            return medianNanos;
        }

        /** The engine's {@link AsyncEngine#inlineSigner()} that signs the inline schemes, or null when none run inline. */
        public KeySigner signer() {
            return signer;
        }

        @Override
        public String toString() {
            return "InlinePolicy.Decision[inline=" + inline + ", medianNanos=" + medianNanos + ']';
        }
    }

    /**
     * Measures the engine's schemes with its {@link AsyncEngine#inlineSigner()} and decides which run inline: real
     * signatures (a warm-up of up to 200 or 150 ms, then 41 timed) for each scheme of the engine's key, so call it once
     * per context, at build time. Returns {@link Decision#none()} for {@link #never()} and for engines without an
     * inline signer. Building thread (never an event loop).
     */
    Decision resolve(AsyncEngine engine) {
        Objects.requireNonNull(engine, "engine");
        KeySigner signer = engine.inlineSigner();
        if (threshold.isZero() || signer == null) {
            return Decision.NONE;
        }
        String keyAlg = engine.publicKey().getAlgorithm();
        byte[] input = new byte[146]; // the size of a TLS 1.3 CertificateVerify input
        new SecureRandom().nextBytes(input);
        Set<SignatureScheme> inline = EnumSet.noneOf(SignatureScheme.class);
        Map<SignatureScheme, Long> medians = new EnumMap<>(SignatureScheme.class);
        for (SignatureScheme scheme : SignatureScheme.values()) {
            if (!fits(scheme, keyAlg)) {
                continue;
            }
            long median = measure(signer, KeyOperation.sign(scheme, input));
            medians.put(scheme, median);
            if (median >= 0 && median <= threshold.toNanos()) {
                inline.add(scheme);
            }
        }
        return new Decision(Collections.unmodifiableSet(inline), Collections.unmodifiableMap(medians),
                inline.isEmpty() ? null : signer);
    }

    private static boolean fits(SignatureScheme scheme, String keyAlg) {
        return switch (scheme.keyAlgorithm()) {
            case "Ed25519" -> "Ed25519".equalsIgnoreCase(keyAlg) || "EdDSA".equalsIgnoreCase(keyAlg);
            case "EC" -> "EC".equals(keyAlg);
            default -> "RSA".equals(keyAlg);
        };
    }

    /** Median nanoseconds of one operation, or -1 when the signer cannot perform it. */
    private static long measure(KeySigner signer, KeyOperation op) {
        try {
            long warmupEnd = System.nanoTime() + WARMUP_NANOS;
            for (int i = 0; i < WARMUP_OPS && System.nanoTime() < warmupEnd; i++) {
                signer.perform(op);
            }
            long[] samples = new long[TIMED_OPS];
            for (int i = 0; i < TIMED_OPS; i++) {
                long t0 = System.nanoTime();
                signer.perform(op);
                samples[i] = System.nanoTime() - t0;
            }
            Arrays.sort(samples);
            return samples[TIMED_OPS / 2];
        } catch (GeneralSecurityException | RuntimeException e) {
            return -1;
        }
    }

    @Override
    public String toString() {
        return threshold.isZero() ? "InlinePolicy[never]" : "InlinePolicy[below " + threshold.toNanos() / 1000 + " us]";
    }
}
