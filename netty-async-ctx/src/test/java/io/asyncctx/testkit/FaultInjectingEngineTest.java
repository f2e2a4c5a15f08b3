package io.asyncctx.testkit;

import com.amazon.corretto.crypto.provider.AmazonCorrettoCryptoProvider;
import io.asyncctx.AsyncEngineException;
import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncStatus;
import io.asyncctx.engine.EventFd;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.SignatureScheme;
import io.asyncctx.testkit.TestOwner.Conn;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.Provider;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class FaultInjectingEngineTest {

    private static KeyPair keyPair;
    private static Provider provider;

    private final List<AutoCloseable> toClose = new ArrayList<>();

    @BeforeAll
    static void generateKey() throws Exception {
        KeyPairGenerator gen = KeyPairGenerator.getInstance("EC");
        gen.initialize(new ECGenParameterSpec("secp256r1"));
        keyPair = gen.generateKeyPair();
        provider = AmazonCorrettoCryptoProvider.INSTANCE.getLoadingError() == null
                ? AmazonCorrettoCryptoProvider.INSTANCE : null;
    }

    @AfterEach
    void closeAll() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
    }

    private FaultInjectingEngine.Builder builder(String name) {
        return FaultInjectingEngine.builder().name(name)
                .signer(new JcaKeySigner(keyPair.getPrivate(), keyPair.getPublic(), provider));
    }

    private FaultInjectingEngine track(FaultInjectingEngine engine) {
        toClose.add(engine);
        return engine;
    }

    private TestOwner owner(int maxJobs) {
        TestOwner owner = new TestOwner(maxJobs);
        toClose.add(owner);
        return owner;
    }

    private static KeyOperation signOp(int i) {
        return KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256,
                ("handshake message " + i).getBytes(StandardCharsets.UTF_8));
    }

    private static void assertVerifies(Conn c) throws Exception {
        Signature verifier = Signature.getInstance("SHA256withECDSA");
        verifier.initVerify(keyPair.getPublic());
        verifier.update(c.op.input());
        assertTrue(verifier.verify(c.job.result()), "signature must verify with the engine's public key");
    }

    /** Starts {@code n} jobs in one owner task (one submission order) and returns their connections. */
    private static List<Conn> startAll(TestOwner owner, FaultInjectingEngine engine, int n, boolean callback)
            throws Exception {
        return owner.call(() -> {
            List<Conn> conns = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                Conn c = owner.open(engine, signOp(i), callback);
                conns.add(c);
                c.start();
            }
            return conns;
        });
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        Await.until(what, Duration.ofSeconds(20), condition);
    }

    /**
     * Waits (bounded) until the fd-path job of {@code c} has ended: each look is a task on the owner thread that drains
     * its wait fd and, when it was readable, resumes the job, as an event loop does. Returns the looks that found the fd
     * readable (the owner's wake-ups).
     */
    private static int awaitFdPathEnd(TestOwner owner, Conn c, int fd) throws InterruptedException {
        AtomicInteger wakeUps = new AtomicInteger();
        Await.until(() -> "the fd-path job to end through wait fd " + fd + " (" + wakeUps + " wake-ups so far)",
                Duration.ofSeconds(20), () -> owner.callUnchecked(() -> {
                    if (EventFd.drain(fd)) {
                        wakeUps.incrementAndGet();
                        c.resume();
                    }
                    return c.job.isDone();
                }));
        return wakeUps.get();
    }

    /**
     * The first seed whose plan (hang rate 0.5, no other fault) hangs the first {@code hung} submissions and completes
     * the next one. The engine takes one plan step per submission, in submission order ({@link FaultPlan}).
     */
    private static long seedThatHangsThenCompletes(int hung, Duration latency) {
        long nanos = latency.toNanos();
        for (long seed = 0; seed < 100_000; seed++) {
            FaultPlan plan = new FaultPlan(seed, nanos, nanos, 0, 0, 0, 0.5, 0, 0, 0);
            int hanging = 0;
            while (hanging < hung && plan.draw().fault() == FaultPlan.Fault.HANG) {
                hanging++;
            }
            if (hanging == hung && plan.draw().fault() == FaultPlan.Fault.NONE) {
                return seed;
            }
        }
        throw new AssertionError("no seed below 100,000 hangs " + hung + " submissions and then completes one");
    }

    /** Operations that reached a final answer at the engine (everything but the hung ones still in flight). */
    private static long settled(FaultInjectingEngine e) {
        return e.completed() + e.failed() + e.statusErrors() + e.eagain() + e.cancelled();
    }

    /** Runs 300 operations with every fault enabled and returns what the owner saw for each, in order. */
    private List<String> outcomes(long seed) throws Exception {
        // Latencies well above the time a start takes, so that only the drawn completeBeforePause completes a job
        // inside its start (a near-zero latency could race a start and make the observation timing-dependent).
        FaultInjectingEngine engine = track(builder("fault-seed-" + seed).seed(seed)
                .latency(Duration.ofMillis(50), Duration.ofMillis(100)).statusErrRate(0.1).eagainRate(0.1).hangRate(0.1)
                .errorRate(0.1).completeBeforePauseRate(0.1).duplicateSignalRate(0.1).spuriousSignalRate(0.1)
                .build());
        TestOwner owner = owner(300);
        int n = 300;
        List<Conn> conns = startAll(owner, engine, n, true);
        List<String> seen = owner.call(() -> {
            List<String> list = new ArrayList<>(n);
            for (Conn c : conns) {
                if (c.startResult != AsyncStartResult.PAUSE) {
                    list.add(c.startResult + "_AT_SUBMIT");
                } else {
                    list.add(c.statusAfterStart == AsyncStatus.EAGAIN ? "EAGAIN" : "PAUSE");
                }
            }
            return list;
        });
        await("every operation but the hung ones", () -> settled(engine) + engine.hung() == n);
        await("the owner to see every completion", () -> conns.stream().allMatch(
                c -> c.job.isDone() || !c.job.isCompletionPending()));
        List<String> hungNow = owner.call(() -> {
            List<String> list = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                Conn c = conns.get(i);
                String end = !c.job.isDone() ? (seen.get(i).equals("EAGAIN") ? "" : "HANG")
                        : c.job.failure() == null ? "OK" : "FAIL";
                list.add(seen.get(i) + "/" + end);
            }
            return list;
        });
        long hangs = hungNow.stream().filter(s -> s.endsWith("/HANG")).count();
        assertEquals(engine.hung(), hangs);
        assertEquals((int) hangs, engine.completeHung());
        await("the hung operations to finish", () -> conns.stream().filter(c -> c.job.isDone()).count()
                == n - engine.eagain());
        for (Conn c : conns) {
            assertTrue(c.ends.get() <= 1, "a job ends once");
            if (c.job.state() == AsyncJob.State.FINISHED && c.job.failure() == null) {
                assertVerifies(c);
            }
        }
        owner.closeAll(conns);
        return hungNow;
    }

    @Test
    void shouldRepeatTheSameOutcomesForTheSameSeed() throws Exception {
        List<String> first = outcomes(42);
        List<String> second = outcomes(42);
        List<String> other = outcomes(43);
        assertEquals(String.join(" ", first), String.join(" ", second),
                "the same seed gives the same faults in the same order");
        assertNotEquals(first, other, "another seed gives another sequence");
        for (String kind : List.of("ERR_AT_SUBMIT/FAIL", "EAGAIN/", "PAUSE/HANG", "PAUSE/FAIL", "PAUSE/OK",
                "FINISH_AT_SUBMIT/OK")) {
            assertTrue(first.contains(kind), "outcome " + kind + " occurs at these rates: " + first);
        }
    }

    @Test
    void shouldInjectEachFaultAtAboutItsRateAndCountIt() throws Exception {
        int n = 2000;
        FaultInjectingEngine engine = track(builder("fault-rates").seed(7)
                .latency(Duration.ZERO, Duration.ofMillis(2)).statusErrRate(0.05).eagainRate(0.10).hangRate(0.05)
                .errorRate(0.10).completeBeforePauseRate(0.05).duplicateSignalRate(0.10).spuriousSignalRate(0.10)
                .build());
        TestOwner owner = owner(n);
        List<Conn> conns = startAll(owner, engine, n, true);
        await("every operation but the hung ones", () -> settled(engine) + engine.hung() == n);
        assertEquals(n, engine.submitted());
        assertAbout("statusErrors", engine.statusErrors(), 0.05 * n);
        assertAbout("eagain", engine.eagain(), 0.10 * n);
        assertAbout("hung", engine.hung(), 0.05 * n);
        assertAbout("failed", engine.failed(), 0.10 * n);
        long completing = n - engine.statusErrors() - engine.eagain() - engine.hung();
        assertEquals(completing, engine.completed() + engine.failed());
        assertAbout("completedBeforePause", engine.completedBeforePause(), 0.05 * completing);
        assertAbout("duplicateSignals", engine.duplicateSignals(), 0.10 * completing);
        assertAbout("spuriousSignals", engine.spuriousSignals(), 0.10 * (completing + engine.hung()));
        assertEquals(engine.hung(), engine.inFlight(), "only the hung ones are still in flight");
        System.out.printf("2,000 ops: statusErr %d, eagain %d, hung %d, failed %d, completed %d, beforePause %d, "
                        + "duplicate %d, spurious %d%n", engine.statusErrors(), engine.eagain(), engine.hung(),
                engine.failed(), engine.completed(), engine.completedBeforePause(), engine.duplicateSignals(),
                engine.spuriousSignals());

        assertEquals((int) engine.hung(), engine.completeHung());
        long expectedEnds = n - engine.eagain();
        await("every job but the EAGAIN ones to end", () -> conns.stream().filter(c -> c.job.isDone()).count()
                == expectedEnds);
        long signals = engine.completed() + engine.failed() + engine.duplicateSignals() + engine.spuriousSignals();
        await("every signal to reach the callback", () -> conns.stream().mapToLong(c -> c.callbacks.get()).sum()
                == signals);
        await("the owner to handle every signal", () -> owner.endedByCallback.get()
                + conns.stream().mapToLong(c -> c.spuriousResumes.get() + c.lateSignals.get()).sum() == signals);
        long ended = owner.call(() -> conns.stream().filter(c -> c.ends.get() == 1).count());
        assertEquals(expectedEnds, ended, "every job that was taken or refused with ERR ends exactly once");
        assertTrue(conns.stream().allMatch(c -> c.ends.get() <= 1));
        long spuriousSeen = conns.stream().mapToLong(c -> c.spuriousResumes.get()).sum();
        long lateSeen = conns.stream().mapToLong(c -> c.lateSignals.get()).sum();
        assertTrue(lateSeen >= engine.duplicateSignals(), "each duplicate signal finds its job ended");
        System.out.println("owner saw " + spuriousSeen + " spurious resumes and " + lateSeen + " late signals");
        owner.closeAll(conns);
    }

    private static void assertAbout(String what, long actual, double expected) {
        assertTrue(actual >= 0.5 * expected && actual <= 1.5 * expected,
                what + ": " + actual + ", expected about " + expected);
    }

    @Test
    void shouldHangUntilCompleteHungAndLetACancelDropAHungOperation() throws Exception {
        // Six hung operations, then a seventh that completes (the probe below), on one scheduler thread.
        Duration latency = Duration.ofMillis(5);
        FaultInjectingEngine engine = track(builder("fault-hang").seed(seedThatHangsThenCompletes(6, latency))
                .hangRate(0.5).latency(latency).threads(1).build());
        TestOwner owner = owner(16);
        List<Conn> conns = startAll(owner, engine, 6, false);
        assertEquals(6, engine.hung());
        assertEquals(6, engine.inFlight());
        Conn cancelled = conns.remove(5);
        owner.call(() -> {
            assertTrue(cancelled.job.abandon());
            cancelled.session.cancel(cancelled.job);
            return null;
        });
        assertEquals(1, engine.cancelled());
        assertEquals(5, engine.inFlight());
        // A hung operation never completes by itself. A later operation on the same path, with the same latency,
        // completes: the one scheduler thread runs its tasks in due order, so a hung operation scheduled to complete
        // after its latency would have completed and signalled before the probe did.
        Conn probe = startAll(owner, engine, 1, false).get(0);
        assertEquals(6, engine.hung(), "the probe does not hang");
        int probeFd = owner.call(() -> probe.ctx.getFd(engine).fd());
        awaitFdPathEnd(owner, probe, probeFd);
        assertEquals(AsyncJob.State.FINISHED, probe.job.state());
        assertVerifies(probe);
        assertEquals(1, engine.completed(), "only the probe completed");
        boolean anyReadable = owner.call(() -> conns.stream()
                .anyMatch(c -> EventFd.drain(c.ctx.getFd(engine).fd())));
        assertFalse(anyReadable, "a hung operation does not signal");
        assertTrue(conns.stream().noneMatch(c -> c.job.isCompletionPending()));

        assertEquals(5, engine.completeHung());
        assertEquals(0, engine.completeHung(), "nothing is left hanging");
        owner.call(() -> {
            for (Conn c : conns) {
                assertTrue(EventFd.drain(c.ctx.getFd(engine).fd()), "completeHung signals the wait fd");
                assertEquals(AsyncStartResult.FINISH, c.resume());
            }
            return null;
        });
        for (Conn c : conns) {
            assertVerifies(c);
        }
        assertEquals(6, engine.completed(), "the five hung ones and the probe");
        assertEquals(0, engine.inFlight());
        conns.add(cancelled);
        conns.add(probe);
        owner.closeAll(conns);
    }

    @Test
    void shouldCompleteOnAnotherThreadBeforeTheSubmitReturns() throws Exception {
        FaultInjectingEngine engine = track(builder("fault-early").completeBeforePauseRate(1.0).build());
        TestOwner owner = owner(32);
        List<Conn> viaCallback = startAll(owner, engine, 20, true);
        for (Conn c : viaCallback) {
            assertEquals(AsyncJob.State.FINISHED, c.job.state(), "the job finished inside start()");
            assertEquals(1, c.ends.get());
            assertVerifies(c);
        }
        await("the callbacks, which find their jobs ended", () -> viaCallback.stream()
                .allMatch(c -> c.callbacks.get() == 1 && c.lateSignals.get() == 1));
        List<Conn> viaFd = startAll(owner, engine, 1, false);
        Conn c = viaFd.get(0);
        assertEquals(AsyncJob.State.FINISHED, c.job.state());
        assertVerifies(c);
        int fd = c.ctx.getChangedFds().added()[0];
        assertTrue(owner.call(() -> EventFd.drain(fd)), "the wait fd was signalled before start returned");
        assertEquals(21, engine.completedBeforePause());
        assertEquals(21, engine.completed());
        owner.closeAll(viaCallback);
        owner.closeAll(viaFd);
    }

    @Test
    void shouldStillEndEachJobOnceDespiteDuplicateAndSpuriousSignals() throws Exception {
        FaultInjectingEngine engine = track(builder("fault-signals").duplicateSignalRate(1.0)
                .spuriousSignalRate(1.0).latency(Duration.ofMillis(100)).build());
        TestOwner owner = owner(32);
        List<Conn> conns = startAll(owner, engine, 10, true);
        await("spurious, real and duplicate signals", () -> conns.stream().allMatch(c -> c.callbacks.get() == 3));
        await("the owner to handle them", () -> conns.stream().allMatch(
                c -> c.ends.get() == 1 && c.spuriousResumes.get() + c.lateSignals.get() == 2));
        long spuriousSeen = conns.stream().mapToLong(c -> c.spuriousResumes.get()).sum();
        assertTrue(spuriousSeen >= 1, "a spurious signal resumes a job that stays paused");
        for (Conn c : conns) {
            assertVerifies(c);
        }
        assertEquals(10, engine.duplicateSignals());
        assertEquals(10, engine.spuriousSignals());

        // The fd path: the fd turns readable before the completion, the job stays paused, then it really ends.
        List<Conn> viaFd = startAll(owner, engine, 1, false);
        Conn c = viaFd.get(0);
        int fd = c.ctx.getChangedFds().added()[0];
        int wakeUps = awaitFdPathEnd(owner, c, fd);
        assertEquals(1, c.ends.get());
        assertVerifies(c);
        assertTrue(wakeUps >= 1 && wakeUps <= 2, "wake-ups: " + wakeUps);
        System.out.println("fd path: " + wakeUps + " wake-ups, " + c.spuriousResumes.get() + " spurious resumes");
        owner.closeAll(conns);
        owner.closeAll(viaFd);
    }

    @Test
    void shouldSetStatusErrAtSubmitWithoutTakingTheOperation() throws Exception {
        FaultInjectingEngine engine = track(builder("fault-err").statusErrRate(1.0).build());
        TestOwner owner = owner(8);
        List<Conn> conns = startAll(owner, engine, 3, true);
        for (Conn c : conns) {
            assertEquals(AsyncJob.State.FINISHED, c.job.state());
            assertInstanceOf(AsyncEngineException.class, c.job.failure());
            assertEquals(0, c.callbacks.get(), "status ERR: no callback comes");
        }
        assertEquals(3, engine.statusErrors());
        assertEquals(0, engine.inFlight());
        owner.closeAll(conns);
    }

    @Test
    void shouldAnswerEagainBeyondCapacityAndFailInFlightOperationsOnCloseLeavingNoThread() throws Exception {
        FaultInjectingEngine engine = track(builder("fault-close").capacity(3).latency(Duration.ofSeconds(30))
                .build());
        TestOwner owner = owner(8);
        List<Conn> conns = startAll(owner, engine, 5, true);
        long eagain = conns.stream().filter(c -> c.ctx.getStatus() == AsyncStatus.EAGAIN).count();
        assertEquals(2, eagain);
        assertEquals(2, engine.eagain());
        assertEquals(3, engine.inFlight());
        assertTrue(threadsNamed("fault-close-") >= 1);
        engine.close();
        await("close to fail the three in flight", () -> owner.endedByCallback.get() == 3);
        for (Conn c : conns) {
            if (c.ctx.getStatus() != AsyncStatus.EAGAIN) {
                assertInstanceOf(AsyncEngineException.class, c.job.failure());
            }
        }
        assertEquals(3, engine.failed());
        assertEquals(0, engine.inFlight());
        await("the scheduler threads to end", () -> threadsNamed("fault-close-") == 0);
        engine.close();
        owner.closeAll(conns);
    }

    @Test
    void shouldCloseOnceWhenClosedFromSeveralThreadsAtOnce() throws Exception {
        FaultInjectingEngine engine = track(builder("fault-close-race").hangRate(1.0).build());
        TestOwner owner = owner(8);
        List<Conn> conns = startAll(owner, engine, 3, true);
        assertEquals(3, engine.hung());
        int closers = 4;
        java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(closers);
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < closers; i++) {
            Thread t = new Thread(() -> {
                try {
                    start.await();
                    engine.close();
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });
            t.start();
            threads.add(t);
        }
        for (Thread t : threads) {
            t.join(30_000);
            assertFalse(t.isAlive());
        }
        assertTrue(engine.isClosed());
        await("close to fail the three hung operations", () -> owner.endedByCallback.get() == 3);
        assertEquals(3, engine.failed(), "each in-flight operation failed once, whoever closed");
        assertEquals(0, engine.inFlight());
        engine.close();
        assertEquals(3, engine.failed());
        await("the scheduler threads to end", () -> threadsNamed("fault-close-race-") == 0);
        owner.closeAll(conns);
    }

    @Test
    void shouldCloseEveryEventFdItCreated() throws Exception {
        FaultInjectingEngine engine = track(builder("fault-fds").latency(Duration.ZERO).build());
        TestOwner owner = owner(64);
        List<Conn> warmUp = startAll(owner, engine, 1, false);
        await("the warm-up completion", () -> engine.completed() == 1);
        owner.closeAll(warmUp);
        long before = openFds();
        List<Conn> conns = startAll(owner, engine, 50, false);
        assertEquals(before + 50, openFds(), "one eventfd per ctx (PER_CTX)");
        await("all completions", () -> engine.completed() == 51);
        owner.closeAll(conns);
        assertEquals(before, openFds());
    }

    @Test
    void shouldCheckItsConfiguration() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> FaultInjectingEngine.builder().build());
        assertTrue(e.getMessage().contains("signer"));
        assertThrows(IllegalArgumentException.class, () -> FaultInjectingEngine.builder().errorRate(1.5));
        assertThrows(IllegalArgumentException.class,
                () -> FaultInjectingEngine.builder().latency(Duration.ofMillis(2), Duration.ofMillis(1)));
        assertThrows(IllegalStateException.class, () -> builder("x").errorRate(0.6).hangRate(0.6).build());
    }

    private static long threadsNamed(String prefix) {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith(prefix) && t.isAlive()).count();
    }

    private static long openFds() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }
}
