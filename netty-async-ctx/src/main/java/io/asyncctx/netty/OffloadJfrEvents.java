package io.asyncctx.netty;

import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;
import jdk.jfr.Timespan;

/**
 * Java Flight Recorder events of the offload path, so a recording shows each pause and resume beside GC and I/O.
 * Enable with {@code -XX:StartFlightRecording} (they are on in the default settings) and look for
 * {@code io.asyncctx.JobPause} and {@code io.asyncctx.JobResume}.
 *
 * <p>Threading: events are created and committed on the event loop; JFR itself is thread-safe.
 */
final class OffloadJfrEvents {

    static {
        // Registered up front, so that a recording started before the first pause already knows the event types.
        jdk.jfr.FlightRecorder.register(JobPause.class);
        jdk.jfr.FlightRecorder.register(JobResume.class);
    }

    private OffloadJfrEvents() {
    }

    /** Loads this class (and so registers the events). */
    static void register() {
        // the static initializer does the work
    }

    /** A job paused waiting for its engine. */
    @Name("io.asyncctx.JobPause")
    @Label("Offload Job Pause")
    @Category({"Netty", "Async Offload"})
    @Description("A TLS private-key operation was handed to an engine and its handshake paused")
    @StackTrace(false)
    static final class JobPause extends Event {
        @Label("Connection")
        long connectionId;

        @Label("Engine")
        String engine;

        @Label("Operation")
        String operation;
    }

    /** A paused job resumed; the event's duration is the pause. */
    @Name("io.asyncctx.JobResume")
    @Label("Offload Job Resume")
    @Category({"Netty", "Async Offload"})
    @Description("A paused TLS private-key operation completed and its handshake resumed on the event loop")
    @StackTrace(false)
    static final class JobResume extends Event {
        @Label("Connection")
        long connectionId;

        @Label("Engine")
        String engine;

        @Label("Paused")
        @Timespan(Timespan.NANOSECONDS)
        long pausedNanos;

        @Label("Outcome")
        String outcome;
    }
}
