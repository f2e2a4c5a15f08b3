package io.asyncctx.testkit;

import java.util.SplittableRandom;

/**
 * What a {@link FaultInjectingEngine} does to each submission, decided at submit: the rates and latency range of its
 * builder and the seeded random sequence they are drawn from. Every submission takes the same fixed number of draws
 * ({@link #draw()}), whatever its outcome, so that the same seed and the same submission order give the same faults
 * and latencies. The engine owns the delivery (scheduler, signals, counters); this class only decides.
 *
 * <p>Threading: thread-safe; {@link #draw()} serialises on the random sequence.
 */
final class FaultPlan {

    /** What happens to one submission; one constant per outcome that the engine chooses at submit. */
    enum Fault {
        /** Completes with a real result after the latency. */
        NONE,
        /** Status ERR set at submit; the operation is not taken. */
        STATUS_ERR,
        /** EAGAIN at submit (drawn at random; the engine also answers it when its capacity is reached). */
        EAGAIN,
        /** Fails after the latency (the job ends with ERR). */
        FAIL,
        /** Never completes until cancelled, {@link FaultInjectingEngine#completeHung()} or close. */
        HANG
    }

    /**
     * The decisions for one submission.
     *
     * @param fault the outcome
     * @param completeBeforePause whether a completing operation completes before its submit returns
     * @param duplicateSignal whether the completion is signalled twice
     * @param spuriousSignal whether a signal with no completion comes first, at half the latency
     * @param latencyNanos when the operation completes, after its submit
     */
    record Draw(Fault fault, boolean completeBeforePause, boolean duplicateSignal, boolean spuriousSignal,
                long latencyNanos) {
    }

    private final SplittableRandom random;
    private final long minLatencyNanos;
    private final long maxLatencyNanos;
    private final double statusErrRate;
    private final double eagainRate;
    private final double errorRate;
    private final double hangRate;
    private final double completeBeforePauseRate;
    private final double duplicateSignalRate;
    private final double spuriousSignalRate;

    FaultPlan(long seed, long minLatencyNanos, long maxLatencyNanos, double statusErrRate, double eagainRate,
              double errorRate, double hangRate, double completeBeforePauseRate, double duplicateSignalRate,
              double spuriousSignalRate) {
        this.random = new SplittableRandom(seed);
        this.minLatencyNanos = minLatencyNanos;
        this.maxLatencyNanos = maxLatencyNanos;
        this.statusErrRate = statusErrRate;
        this.eagainRate = eagainRate;
        this.errorRate = errorRate;
        this.hangRate = hangRate;
        this.completeBeforePauseRate = completeBeforePauseRate;
        this.duplicateSignalRate = duplicateSignalRate;
        this.spuriousSignalRate = spuriousSignalRate;
    }

    /** The decisions for the next submission: every draw first, a fixed number per call, never timing-dependent. */
    Draw draw() {
        double kind;
        double beforePause;
        double duplicate;
        double spurious;
        long latency;
        synchronized (random) {
            kind = random.nextDouble();
            beforePause = random.nextDouble();
            duplicate = random.nextDouble();
            spurious = random.nextDouble();
            latency = maxLatencyNanos == minLatencyNanos ? minLatencyNanos
                    : random.nextLong(minLatencyNanos, maxLatencyNanos + 1);
        }
        return new Draw(faultOf(kind), beforePause < completeBeforePauseRate, duplicate < duplicateSignalRate,
                spurious < spuriousSignalRate, latency);
    }

    private Fault faultOf(double u) {
        double edge = statusErrRate;
        if (u < edge) {
            return Fault.STATUS_ERR;
        }
        edge += eagainRate;
        if (u < edge) {
            return Fault.EAGAIN;
        }
        edge += hangRate;
        if (u < edge) {
            return Fault.HANG;
        }
        edge += errorRate;
        return u < edge ? Fault.FAIL : Fault.NONE;
    }
}
