package io.asyncctx.netty;

import io.asyncctx.testkit.Await;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.ResourceLeakDetector;
import io.netty.util.ResourceLeakDetectorFactory;

import java.lang.ref.WeakReference;
import java.lang.reflect.Field;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import javax.net.ssl.SSLEngine;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Makes Netty's leak detector fail tests: a {@link ResourceLeakDetectorFactory} whose detectors record every leak
 * report (traced or untraced) besides logging it, and a JUnit 5 extension that, after each test class, collects
 * garbage, provokes the detectors to look (allocating and releasing a buffer and a BoringSSL engine) and fails the
 * class when anything was reported since the previous check.
 *
 * <p>Use {@code @ExtendWith(LeakCheck.class)} on a class, or suite-wide through
 * {@code META-INF/services/org.junit.jupiter.api.extension.Extension} with
 * {@code junit.jupiter.extensions.autodetection.enabled=true}. The factory must be in place before Netty creates its
 * detectors (static initializers of ByteBuf and the SSL engine classes): the extension installs it when it is loaded,
 * and checks that the buffer detector is one of its own; the system property
 * {@code -Dio.netty.customResourceLeakDetector=io.asyncctx.netty.LeakCheck$RecordingDetector} installs it for the whole
 * JVM regardless of order. A leak reported during a class may come from an earlier one (reports wait for the garbage
 * collector): either way the suite fails.
 *
 * <p>Waiting for the detector is deterministic, not a matter of sleeping long enough: each check leaks a tracked
 * sentinel buffer of its own, then collects garbage and provokes the detectors until the sentinel's report has come
 * back (so the collector has queued what it found unreachable and the buffer detector has drained its queue), then runs
 * one more round for the other detectors. Sentinel reports are not leaks and are not logged.
 *
 * <p>Threading: detectors report on any thread (a concurrent queue); the extension runs on JUnit's thread.
 */
public final class LeakCheck implements BeforeAllCallback, AfterAllCallback {

    private static final ConcurrentLinkedQueue<String> LEAKS = new ConcurrentLinkedQueue<>();
    private static final String SENTINEL = "leakcheck-sentinel-";
    private static final java.util.Set<String> SENTINELS_REPORTED = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private static final java.util.concurrent.atomic.AtomicLong SENTINELS = new java.util.concurrent.atomic.AtomicLong();

    static {
        install();
    }

    /** A detector that records its reports. Public with both constructors for the system-property route. */
    public static final class RecordingDetector<T> extends ResourceLeakDetector<T> {

        public RecordingDetector(Class<?> resourceType, int samplingInterval) {
            super(resourceType, samplingInterval);
        }

        @SuppressWarnings("deprecation")
        public RecordingDetector(Class<?> resourceType, int samplingInterval, long maxActive) {
            super(resourceType, samplingInterval);
        }

        @Override
        protected boolean needReport() {
            return true;
        }

        @Override
        protected void reportTracedLeak(String resourceType, String records) {
            int at = records.indexOf(SENTINEL);
            if (at >= 0) {
                int end = at + SENTINEL.length();
                while (end < records.length() && Character.isDigit(records.charAt(end))) {
                    end++;
                }
                SENTINELS_REPORTED.add(records.substring(at, end));
                return; // our own sentinel: proof that the detector polled its queue, not a leak
            }
            LEAKS.add("LEAK " + resourceType + records);
            super.reportTracedLeak(resourceType, records);
        }

        @Override
        protected void reportUntracedLeak(String resourceType) {
            LEAKS.add("LEAK " + resourceType + " (untraced)");
            super.reportUntracedLeak(resourceType);
        }
    }

    private static final class Factory extends ResourceLeakDetectorFactory {
        @Override
        @SuppressWarnings("deprecation")
        public <T> ResourceLeakDetector<T> newResourceLeakDetector(Class<T> resource, int samplingInterval,
                                                                   long maxActive) {
            return new RecordingDetector<>(resource, samplingInterval);
        }

        @Override
        public <T> ResourceLeakDetector<T> newResourceLeakDetector(Class<T> resource, int samplingInterval) {
            return new RecordingDetector<>(resource, samplingInterval);
        }
    }

    /** Installs the recording factory (idempotent). */
    static synchronized void install() {
        if (!(ResourceLeakDetectorFactory.instance() instanceof Factory)) {
            ResourceLeakDetectorFactory.setResourceLeakDetectorFactory(new Factory());
        }
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        assertInstalled();
    }

    @Override
    public void afterAll(ExtensionContext context) throws Exception {
        assertNoLeaks(context.getDisplayName());
    }

    /** Fails when Netty's buffer leak detector was created before this factory was installed (it would see nothing). */
    static void assertInstalled() {
        try {
            Class<?> c = Class.forName("io.netty.buffer.AbstractByteBuf");
            Field f = c.getDeclaredField("leakDetector");
            f.setAccessible(true);
            Object detector = f.get(null);
            if (!(detector instanceof RecordingDetector)) {
                throw new AssertionError("Netty's ByteBuf leak detector is " + detector + ", not LeakCheck's: it was "
                        + "created before LeakCheck was installed; run with -Dio.netty.customResourceLeakDetector="
                        + RecordingDetector.class.getName() + " or enable JUnit extension autodetection");
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            // Without the check, "no leak reported" could mean "nothing was watching": refuse to go on.
            throw new AssertionError("LeakCheck cannot verify that Netty's ByteBuf leak detector is its own ("
                    + e + "); a Netty upgrade may have renamed AbstractByteBuf.leakDetector: update LeakCheck", e);
        }
    }

    /**
     * Collects garbage, makes the detectors poll their queues, and fails with every leak reported since the last call.
     */
    static void assertNoLeaks(String where) throws InterruptedException {
        awaitDetectorsDrained();
        List<String> found = new ArrayList<>();
        for (String s; (s = LEAKS.poll()) != null;) {
            found.add(s);
        }
        if (!found.isEmpty()) {
            throw new AssertionError(found.size() + " Netty leak report(s) by the end of " + where + ":\n"
                    + String.join("\n\n", found));
        }
    }

    /**
     * Leaks a tracked sentinel buffer, collects garbage until it is gone, then provokes the detectors until its report
     * arrives; then one more round for the detectors of other resource types. Each step is a bounded wait that fails
     * when its event does not come: without the sentinel's report, no report proves nothing.
     */
    private static void awaitDetectorsDrained() throws InterruptedException {
        if (ResourceLeakDetector.getLevel() != ResourceLeakDetector.Level.PARANOID) {
            // Only PARANOID tracks every buffer (and so the sentinel); the suite runs at that level.
            ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
        }
        String hint = SENTINEL + SENTINELS.incrementAndGet();
        WeakReference<ByteBuf> sentinel = leakSentinel(hint);
        awaitCollected("LeakCheck's sentinel buffer (is explicit GC enabled?)", sentinel);
        // The reference handler thread queues the detector's own reference to the buffer, and the detector polls its
        // queue when it tracks a new buffer (provoke); collecting again costs little and does not rely on the
        // detector's reference being cleared together with ours.
        Await.until(() -> "the buffer leak detector never reported LeakCheck's own sentinel leak (collected): cannot "
                + "tell whether a leak was missed; is -Dio.netty.leakDetection.level=paranoid set?",
                Duration.ofSeconds(10), () -> {
                    provoke();
                    if (SENTINELS_REPORTED.remove(hint)) {
                        return true;
                    }
                    System.gc();
                    return false;
                });
        System.gc();
        provoke();
    }

    /** Allocates a tracked buffer, marks it with {@code hint} and drops it unreleased; returns a reference to it. */
    private static WeakReference<ByteBuf> leakSentinel(String hint) {
        // Pooled: unpooled heap buffers are not tracked at all. Its 16 bytes stay out of the pool for good.
        ByteBuf tracked = PooledByteBufAllocator.DEFAULT.heapBuffer(1);
        tracked.touch(hint);
        // The detector watches the buffer inside the leak-aware wrapper.
        ByteBuf inner = tracked.unwrap() != null ? tracked.unwrap() : tracked;
        return new WeakReference<>(inner);
    }

    /**
     * Collects garbage until {@code ref} is cleared, failing naming {@code what} when it is not within 10 s: a full
     * collection ({@link System#gc()}, which the suite does not disable) clears a weak reference to an unreachable
     * object, so this returns after one round unless something still holds the object (for a while, a thread that is
     * finishing: a loop's own).
     */
    static void awaitCollected(String what, java.lang.ref.Reference<?> ref) throws InterruptedException {
        Await.until(() -> "still reachable after 10 s of garbage collections: " + what, Duration.ofSeconds(10), () -> {
            if (ref.get() == null) {
                return true;
            }
            System.gc();
            return ref.get() == null;
        });
    }

    /** Each detector looks at its queue of collected, unreleased objects when it tracks a new one. */
    private static void provoke() {
        for (ByteBufAllocator alloc : List.of(PooledByteBufAllocator.DEFAULT, UnpooledByteBufAllocator.DEFAULT)) {
            ByteBuf direct = alloc.directBuffer(8);
            direct.release();
            ByteBuf heap = alloc.heapBuffer(8);
            heap.release();
        }
        if (OpenSsl.isAvailable()) {
            try {
                SslContext ctx = SslContextBuilder.forClient().sslProvider(SslProvider.OPENSSL).build();
                try {
                    SSLEngine engine = ctx.newEngine(UnpooledByteBufAllocator.DEFAULT);
                    ReferenceCountUtil.release(engine);
                } finally {
                    ReferenceCountUtil.release(ctx);
                }
            } catch (javax.net.ssl.SSLException e) {
                throw new AssertionError("cannot build a client SslContext to provoke the SSL leak detectors", e);
            }
        }
    }
}
