package io.asyncctx.testkit;

import com.amazon.corretto.crypto.provider.AmazonCorrettoCryptoProvider;
import io.asyncctx.AsyncEngineException;
import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncJobPool;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncStatus;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.AbstractAsyncEngine;
import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.EventFd;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.KeySigner;
import io.asyncctx.engine.SignatureScheme;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.Provider;
import java.security.PublicKey;
import java.security.Signature;
import java.security.SignatureException;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class SimulatedAcceleratorEngineTest {

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

    private static KeySigner signer() {
        return new JcaKeySigner(keyPair.getPrivate(), keyPair.getPublic(), provider);
    }

    private SimulatedAcceleratorEngine engine(String name, Duration latency, int ringSize,
                                              AbstractAsyncEngine.FdMode mode) {
        SimulatedAcceleratorEngine engine = SimulatedAcceleratorEngine.builder().name(name).latency(latency)
                .ringSize(ringSize).fdMode(mode).signer(signer()).signerThreads(1).build();
        toClose.add(engine);
        return engine;
    }

    private Owner owner(int maxJobs) {
        Owner owner = new Owner(maxJobs);
        toClose.add(owner);
        return owner;
    }

    private static KeyOperation signOp(int i) {
        return KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256,
                ("handshake message " + i).getBytes(StandardCharsets.UTF_8));
    }

    private static void assertVerifies(KeyOperation op, byte[] signature) throws Exception {
        Signature verifier = Signature.getInstance("SHA256withECDSA");
        verifier.initVerify(keyPair.getPublic());
        verifier.update(op.input());
        assertTrue(verifier.verify(signature), "signature must verify with the engine's public key");
    }

    @Test
    void shouldOverlapTheLatencyOfRequestsSubmittedTogether() throws Exception {
        SimulatedAcceleratorEngine engine = engine("sim-overlap", Duration.ofMillis(200), 64,
                AbstractAsyncEngine.FdMode.SHARED_PER_LOOP);
        Owner owner = owner(64);
        int n = 50;
        CountDownLatch done = new CountDownLatch(n);
        List<Conn> conns = new ArrayList<>();
        long start = System.nanoTime();
        owner.call(() -> {
            for (int i = 0; i < n; i++) {
                Conn c = owner.open(engine, signOp(i), true, done);
                conns.add(c);
                assertEquals(AsyncStartResult.PAUSE, c.start());
                assertEquals(AsyncStatus.OK, c.ctx.getStatus());
            }
            return null;
        });
        assertTrue(done.await(10, TimeUnit.SECONDS), "all 50 callbacks must resume their jobs");
        long elapsedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        System.out.println("50 x 200 ms requests completed in " + elapsedMillis + " ms");
        assertTrue(elapsedMillis >= 200, "no completion before the modelled latency: " + elapsedMillis + " ms");
        // Overlap counted by the engine, not timed (a loaded machine stretches the wall time).
        assertTrue(engine.maxInFlight() > 1, "50 requests of 200 ms must overlap; at most " + engine.maxInFlight()
                + " were in flight");
        for (Conn c : conns) {
            assertEquals(AsyncJob.State.FINISHED, c.job.state());
            assertVerifies(c.op, c.job.result());
        }
        assertEquals(n, engine.submitted());
        assertEquals(n, engine.completed());
        assertEquals(0, engine.inFlight());
        assertTrue(engine.maxInFlight() == n, "all 50 were in flight at once: " + engine.maxInFlight());
        assertTrue(engine.batches() > 0 && engine.batches() < n, "batches: " + engine.batches());
        owner.closeAll(conns);
    }

    @Test
    void shouldAnswerEagainWhenTheRingIsFullAndTakeTheRetryLater() throws Exception {
        SimulatedAcceleratorEngine engine = engine("sim-ring", Duration.ofMillis(300), 8,
                AbstractAsyncEngine.FdMode.SHARED_PER_LOOP);
        Owner owner = owner(32);
        CountDownLatch done = new CountDownLatch(20);
        List<Conn> conns = new ArrayList<>();
        int eagain = owner.call(() -> {
            int count = 0;
            for (int i = 0; i < 20; i++) {
                Conn c = owner.open(engine, signOp(i), true, done);
                conns.add(c);
                assertEquals(AsyncStartResult.PAUSE, c.start());
                if (c.ctx.getStatus() == AsyncStatus.EAGAIN) {
                    count++;
                }
            }
            return count;
        });
        assertEquals(12, eagain);
        assertEquals(12, engine.rejected());
        assertEquals(8, engine.submitted());
        assertEquals(8, engine.maxInFlight());
        // The caller retries EAGAIN jobs itself (no signal comes for them): each time a completion frees a slot, it
        // resumes them until the ring has taken them all. Only the owner submits, so a retry made after a slot was seen
        // free gets at least one job in: every pass makes progress.
        while (owner.call(() -> retryEagain(conns)) > 0) {
            Await.until(() -> "a completion to free a slot of the full ring for the EAGAIN jobs (in flight "
                    + engine.inFlight() + " of 8)", Duration.ofSeconds(20), () -> engine.inFlight() < 8);
        }
        assertTrue(done.await(20, TimeUnit.SECONDS), "all 20 jobs must finish");
        for (Conn c : conns) {
            assertVerifies(c.op, c.job.result());
        }
        assertEquals(20, engine.completed());
        assertEquals(20, engine.submitted());
        assertTrue(engine.maxInFlight() <= 8, "the ring never holds more than 8: " + engine.maxInFlight());
        owner.closeAll(conns);
    }

    private static int retryEagain(List<Conn> conns) {
        int waiting = 0;
        for (Conn c : conns) {
            if (c.job.state() == AsyncJob.State.PAUSED && c.ctx.getStatus() == AsyncStatus.EAGAIN) {
                AsyncStartResult r = c.job.resume();
                assertEquals(AsyncStartResult.PAUSE, r);
                if (c.ctx.getStatus() == AsyncStatus.EAGAIN) {
                    waiting++;
                }
            }
        }
        return waiting;
    }

    @Test
    void shouldShareOneEventFdAmongAThousandCtxsOfOneLoopAndSignalItOncePerBatch() throws Exception {
        SimulatedAcceleratorEngine engine = engine("sim-shared", Duration.ofMillis(100), 1024,
                AbstractAsyncEngine.FdMode.SHARED_PER_LOOP);
        Owner owner = owner(1000);
        warmUp(engine, owner);
        int n = 1000;
        long completedBefore = engine.completed();
        long batchesBefore = engine.batches();
        long fdsBefore = openFds();
        List<Conn> conns = new ArrayList<>();
        Set<Integer> fds = owner.call(() -> {
            Set<Integer> seen = new HashSet<>();
            for (int i = 0; i < n; i++) {
                Conn c = owner.open(engine, signOp(i), false, null);
                conns.add(c);
                assertEquals(AsyncStartResult.PAUSE, c.start());
                int[] all = new int[c.ctx.getAllFds(null)];
                c.ctx.getAllFds(all);
                assertEquals(1, all.length, "one wait fd per ctx");
                assertEquals(1, c.ctx.getChangedFds().added().length);
                seen.add(all[0]);
            }
            return seen;
        });
        long fdsPaused = openFds();
        assertEquals(1, fds.size(), "all ctxs of one loop share one eventfd");
        assertEquals(1, engine.sharedFdCount());
        assertTrue(fdsPaused - fdsBefore <= 1, "fds grew by " + (fdsPaused - fdsBefore) + " for 1,000 ctxs");

        int fd = fds.iterator().next();
        awaitFdCompletions(owner, fd, conns);
        for (Conn c : conns) {
            assertVerifies(c.op, c.job.result());
        }
        assertEquals(n, engine.completed() - completedBefore);
        long batches = engine.batches() - batchesBefore;
        System.out.println("1,000 completions in " + batches + " batches, " + engine.signals() + " signals");
        assertTrue(batches > 0 && batches < n, "batches: " + batches);
        assertTrue(engine.signals() == engine.batches(), "one signal per batch on one loop: signals "
                + engine.signals() + ", batches " + engine.batches());
        owner.closeAll(conns);
        assertEquals(0, engine.sharedFdCount(), "the last ctx's cleanup closes the shared eventfd");
        assertEquals(fdsBefore, openFds(), "no fd left behind");
    }

    @Test
    void shouldGiveEachCtxItsOwnEventFdInPerCtxMode() throws Exception {
        SimulatedAcceleratorEngine engine = engine("sim-perctx", Duration.ofMillis(20), 64,
                AbstractAsyncEngine.FdMode.PER_CTX);
        Owner owner = owner(64);
        warmUp(engine, owner);
        long fdsBefore = openFds();
        int n = 10;
        List<Conn> conns = new ArrayList<>();
        Set<Integer> fds = owner.call(() -> {
            Set<Integer> seen = new HashSet<>();
            for (int i = 0; i < n; i++) {
                Conn c = owner.open(engine, signOp(i), false, null);
                conns.add(c);
                assertEquals(AsyncStartResult.PAUSE, c.start());
                seen.add(c.ctx.getChangedFds().added()[0]);
            }
            return seen;
        });
        assertEquals(n, fds.size(), "one eventfd per ctx");
        assertEquals(fdsBefore + n, openFds());
        for (int i = 0; i < n; i++) {
            awaitFdCompletions(owner, conns.get(i).ctx.getFd(engine).fd(), List.of(conns.get(i)));
            assertVerifies(conns.get(i).op, conns.get(i).job.result());
        }
        owner.closeAll(conns);
        assertEquals(fdsBefore, openFds(), "closing the ctxs closes their eventfds");
    }

    @Test
    void shouldDropACancelledRequestAndFreeItsSlot() throws Exception {
        SimulatedAcceleratorEngine engine = engine("sim-cancel", Duration.ofSeconds(30), 4,
                AbstractAsyncEngine.FdMode.SHARED_PER_LOOP);
        Owner owner = owner(4);
        AtomicInteger callbacks = new AtomicInteger();
        Conn c = owner.call(() -> {
            Conn conn = owner.open(engine, signOp(1), false, null);
            conn.ctx.setCallback(arg -> callbacks.incrementAndGet(), null);
            assertEquals(AsyncStartResult.PAUSE, conn.start());
            return conn;
        });
        assertEquals(1, engine.inFlight());
        owner.call(() -> {
            assertTrue(c.job.abandon());
            c.session.cancel(c.job);
            return null;
        });
        assertEquals(0, engine.inFlight());
        assertEquals(1, engine.cancelled());
        engine.close();
        assertEquals(0, engine.completed());
        assertEquals(0, engine.failed(), "a cancelled request is not failed again by close");
        assertEquals(0, callbacks.get(), "no signal for a cancelled request");
        owner.call(() -> {
            c.ctx.close();
            return null;
        });
    }

    @Test
    void shouldFailQueuedRequestsOnCloseAndLeaveNoThread() throws Exception {
        SimulatedAcceleratorEngine engine = engine("sim-close", Duration.ofSeconds(30), 16,
                AbstractAsyncEngine.FdMode.SHARED_PER_LOOP);
        Owner owner = owner(16);
        CountDownLatch done = new CountDownLatch(5);
        List<Conn> conns = new ArrayList<>();
        owner.call(() -> {
            for (int i = 0; i < 5; i++) {
                Conn c = owner.open(engine, signOp(i), true, done);
                conns.add(c);
                assertEquals(AsyncStartResult.PAUSE, c.start());
            }
            return null;
        });
        assertTrue(threadsNamed("sim-close-") >= 2, "poller and signer run");
        engine.close();
        assertTrue(done.await(10, TimeUnit.SECONDS), "close fails and signals every queued request");
        for (Conn c : conns) {
            assertEquals(AsyncJob.State.FINISHED, c.job.state());
            assertInstanceOf(AsyncEngineException.class, c.job.failure());
        }
        assertEquals(5, engine.failed());
        assertEquals(0, engine.inFlight());
        assertEquals(0, awaitNoThreadsNamed("sim-close-"), "close stops the poller and the signers");
        engine.close(); // idempotent
        Conn late = owner.call(() -> {
            Conn c = owner.open(engine, signOp(9), true, null);
            assertEquals(AsyncStartResult.ERR, c.start());
            return c;
        });
        assertNotNull(late.job.failure());
        owner.closeAll(conns);
    }

    @Test
    void shouldDeliverWhenTheSignatureIsReadyIfTheSignerIsSlowerThanTheLatency() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        KeyOperation probeOp = signOp(99);
        KeySigner real = signer();
        KeySigner slow = new KeySigner() {
            @Override
            public PublicKey publicKey() {
                return real.publicKey();
            }

            @Override
            public byte[] perform(KeyOperation operation) throws GeneralSecurityException {
                if (!Arrays.equals(operation.input(), probeOp.input())) { // the probe's signer is not held back
                    try {
                        release.await(10, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                if (operation.input().length == 0) {
                    throw new SignatureException("empty input refused by the test signer");
                }
                return real.perform(operation);
            }
        };
        // Three signers: two block on the two requests, the third signs the probe.
        SimulatedAcceleratorEngine engine = SimulatedAcceleratorEngine.builder().name("sim-slow")
                .latency(Duration.ofMillis(1)).signer(slow).signerThreads(3).build();
        toClose.add(engine);
        Owner owner = owner(4);
        CountDownLatch done = new CountDownLatch(2);
        KeyOperation bad = KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256, new byte[0]);
        List<Conn> conns = owner.call(() -> {
            List<Conn> list = List.of(owner.open(engine, signOp(1), true, done), owner.open(engine, bad, true, done));
            for (Conn c : list) {
                assertEquals(AsyncStartResult.PAUSE, c.start());
            }
            return list;
        });
        // A later request on the same path whose signer is not held back. The ring is in due order, so the poller has
        // found the two earlier requests due (and left them, their signatures not ready) before it finds the probe due,
        // and the probe is delivered only after that (by the poller, or by its signer if later): had either of the two
        // been delivered, it shows once the probe has completed.
        CountDownLatch probeDone = new CountDownLatch(1);
        Conn probe = owner.call(() -> {
            Conn c = owner.open(engine, probeOp, true, probeDone);
            assertEquals(AsyncStartResult.PAUSE, c.start());
            return c;
        });
        assertTrue(probeDone.await(10, TimeUnit.SECONDS), "the probe, whose signer is not held back, completes");
        assertEquals(1, engine.completed(), "only the probe completed");
        assertEquals(0, engine.failed());
        assertEquals(2, engine.inFlight(), "due before the probe, but the signatures are not ready");
        assertEquals(2, done.getCount(), "neither blocked job was resumed");
        assertVerifies(probe.op, probe.job.result());
        release.countDown();
        assertTrue(done.await(10, TimeUnit.SECONDS), "the signers deliver late results themselves");
        assertVerifies(conns.get(0).op, conns.get(0).job.result());
        assertInstanceOf(SignatureException.class, conns.get(1).job.failure());
        assertEquals(2, engine.completed());
        assertEquals(1, engine.failed());
        assertEquals(0, engine.inFlight());
        owner.closeAll(conns);
        owner.closeAll(List.of(probe));
    }

    @Test
    void shouldRefuseToBuildWithoutASigner() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> SimulatedAcceleratorEngine.builder().build());
        assertTrue(e.getMessage().contains("signer"));
        assertThrows(IllegalArgumentException.class, () -> SimulatedAcceleratorEngine.builder().ringSize(0));
        assertThrows(IllegalArgumentException.class,
                () -> SimulatedAcceleratorEngine.builder().latency(Duration.ofMillis(-1)));
    }

    /** Loads the provider and the fd path once so that later fd counts see only the test's own fds. */
    private static void warmUp(SimulatedAcceleratorEngine engine, Owner owner) throws Exception {
        Conn c = owner.call(() -> {
            Conn conn = owner.open(engine, signOp(-1), false, null);
            assertEquals(AsyncStartResult.PAUSE, conn.start());
            return conn;
        });
        awaitFdCompletions(owner, c.ctx.getFd(engine).fd(), List.of(c));
        owner.call(() -> {
            c.ctx.close();
            return null;
        });
    }

    /**
     * Waits (bounded) until every job of {@code conns} has ended: each look is a task on the owner thread that drains
     * {@code fd} and, when it was readable, resumes every job whose completion is pending, as an event loop does.
     */
    private static void awaitFdCompletions(Owner owner, int fd, List<Conn> conns) throws InterruptedException {
        AtomicInteger remaining = new AtomicInteger(conns.size());
        Await.until(() -> remaining.get() + " of " + conns.size() + " jobs to complete through wait fd " + fd,
                Duration.ofSeconds(20), () -> {
                    remaining.set(owner.callUnchecked(() -> {
                        if (EventFd.drain(fd)) {
                            for (Conn c : conns) {
                                if (c.job.isCompletionPending()) {
                                    assertEquals(AsyncStartResult.FINISH, c.job.resume());
                                }
                            }
                        }
                        return (int) conns.stream().filter(c -> !c.job.isDone()).count();
                    }));
                    return remaining.get() == 0;
                });
    }

    /**
     * Open eventfds of this process. Only eventfds: the JVM and other tests' threads open and close other files (jars,
     * sockets) at any time, which made a count of every fd move by one now and then.
     */
    static long openFds() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().contains("eventfd");
                } catch (IOException e) {
                    return false; // closed meanwhile (the listing's own fd)
                }
            }).count();
        }
    }

    static long threadsNamed(String prefix) {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith(prefix) && t.isAlive()).count();
    }

    /** Joins the threads named {@code prefix...}, 5 s in all; returns how many are still alive then. */
    static long awaitNoThreadsNamed(String prefix) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            long left = deadline - System.nanoTime();
            if (t.getName().startsWith(prefix) && left > 0) {
                TimeUnit.NANOSECONDS.timedJoin(t, left);
            }
        }
        return threadsNamed(prefix);
    }

    /** One connection: its ctx, engine session and job. Owner thread. */
    static final class Conn {
        final AsyncWaitCtx ctx = new AsyncWaitCtx();
        final KeyOperation op;
        EngineSession session;
        AsyncJob<byte[]> job;
        CountDownLatch done;

        Conn(KeyOperation op) {
            this.op = op;
        }

        AsyncStartResult start() {
            AsyncStartResult r = job.start();
            if ((r == AsyncStartResult.FINISH || r == AsyncStartResult.ERR) && done != null) {
                done.countDown();
            }
            return r;
        }
    }

    /** A plain single-thread owner (an event loop stand-in) with its job pool. */
    static final class Owner implements AutoCloseable {
        final ExecutorService executor = Executors.newSingleThreadExecutor(r -> new Thread(r, "test-owner"));
        final AsyncJobPool pool;

        Owner(int maxJobs) {
            pool = new AsyncJobPool(maxJobs, executor);
        }

        <T> T call(Callable<T> task) throws Exception {
            try {
                return executor.submit(task).get(30, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                if (e.getCause() instanceof Error err) {
                    throw err;
                }
                throw e;
            }
        }

        /** {@link #call} for a condition of {@link Await}: a checked exception fails the test. */
        <T> T callUnchecked(Callable<T> task) {
            try {
                return call(task);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted waiting for the owner thread", e);
            } catch (Exception e) {
                throw new AssertionError("the owner task failed", e);
            }
        }

        /** Opens a connection; with {@code callback} its ctx resumes through the callback and counts down. */
        Conn open(AsyncEngine engine, KeyOperation op, boolean callback, CountDownLatch done) {
            Conn c = new Conn(op);
            c.done = done;
            c.session = engine.newSession(c.ctx, executor);
            c.job = new AsyncJob<>(pool, c.ctx, j -> c.session.submit(j, op));
            if (callback) {
                c.ctx.setCallback(arg -> {
                    executor.execute(() -> {
                        if (c.job.isCompletionPending()) {
                            AsyncStartResult r = c.job.resume();
                            if (r != AsyncStartResult.PAUSE && done != null) {
                                done.countDown();
                            }
                        }
                    });
                    return 1;
                }, null);
            }
            return c;
        }

        /** Closes the ctxs on the owner thread, as a connection's teardown does. */
        void closeAll(List<Conn> conns) throws Exception {
            call(() -> {
                conns.forEach(c -> c.ctx.close());
                return null;
            });
        }

        @Override
        public void close() throws InterruptedException {
            executor.shutdown();
            assertTrue(executor.awaitTermination(10, TimeUnit.SECONDS));
        }
    }
}
