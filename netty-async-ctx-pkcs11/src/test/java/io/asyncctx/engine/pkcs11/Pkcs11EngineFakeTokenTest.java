package io.asyncctx.engine.pkcs11;

import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncJobPool;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncStatus;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.SignatureScheme;
import io.netty.pkitesting.CertificateBuilder.Algorithm;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.xipki.pkcs11.wrapper.PKCS11Constants;
import org.xipki.pkcs11.wrapper.PKCS11Exception;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.interfaces.RSAPublicKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import javax.crypto.Cipher;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine's own logic on a {@link FakeCryptoki} (no SoftHSM2): the mechanisms it asks of the token, when it reopens a
 * session and when it re-initialises the module, a refused PIN, a session limit, a deleted key, EAGAIN on a full queue,
 * and what close does with queued operations, busy workers and the login. Jobs run through real {@link AsyncJob}s on an
 * owner thread, the engine's workers are real threads; only the token is fake. The same behaviours against a real
 * token: {@link Pkcs11EngineTest} and {@link Pkcs11TokenFailureTest}.
 */
@Timeout(60)
class Pkcs11EngineFakeTokenTest {

    private static final SignatureScheme EC = SignatureScheme.ECDSA_SECP256R1_SHA256;

    @TempDir
    Path dir;

    private FakeCryptoki fake;
    private ExecutorService owner;
    private final List<Pkcs11Engine> engines = new ArrayList<>();

    @BeforeEach
    void createToken() throws Exception {
        owner = Executors.newSingleThreadExecutor(r -> new Thread(r, "owner"));
        fake = new FakeCryptoki();
        fake.addKey("ec-key", new byte[]{1}, Algorithm.ecp256);
    }

    @AfterEach
    void closeEngines() throws Exception {
        for (Pkcs11Engine e : engines) {
            e.close();
        }
        owner.shutdownNow();
        assertTrue(owner.awaitTermination(10, TimeUnit.SECONDS));
    }

    @Test
    void shouldSignAndDecryptWithEveryKeyTypeThroughTheTokensMechanisms() throws Exception {
        fake.addKey("rsa-key", new byte[]{2}, Algorithm.rsa2048);
        fake.addKey("ed-key", new byte[]{3}, Algorithm.ed25519);
        Pkcs11Engine rsa = open(builder("rsa-key"));
        for (SignatureScheme scheme : new SignatureScheme[]{SignatureScheme.RSA_PKCS1_SHA1,
            SignatureScheme.RSA_PKCS1_SHA256, SignatureScheme.RSA_PKCS1_SHA384, SignatureScheme.RSA_PKCS1_SHA512,
            SignatureScheme.RSA_PSS_RSAE_SHA256, SignatureScheme.RSA_PSS_RSAE_SHA384,
            SignatureScheme.RSA_PSS_RSAE_SHA512}) {
            assertSigns(rsa, scheme);
        }
        byte[] plain = new byte[256];
        new SecureRandom().nextBytes(plain);
        plain[0] = 0; // below the modulus
        Cipher c = Cipher.getInstance("RSA/ECB/NoPadding");
        c.init(Cipher.ENCRYPT_MODE, (RSAPublicKey) rsa.publicKey());
        AsyncJob<byte[]> decrypted = run(rsa, KeyOperation.decrypt(c.doFinal(plain)));
        assertNull(decrypted.failure());
        assertArrayEquals(plain, decrypted.result());

        Pkcs11Engine ec = open(builder("ec-key"));
        for (SignatureScheme scheme : new SignatureScheme[]{SignatureScheme.ECDSA_SHA1, EC}) {
            assertSigns(ec, scheme);
        }
        assertSigns(open(builder("ed-key")), SignatureScheme.ED25519);
        assertEquals("RSA", rsa.keyAlgorithm());
        assertEquals(FakeCryptoki.SLOT, ec.slotId());
    }

    @Test
    void shouldReopenTheSessionWithoutReinitializingWhenOnlyTheSessionWasLost() throws Exception {
        Pkcs11Engine engine = open(builder("ec-key").threads(1));
        assertNull(run(engine).failure());
        fake.failNextSign(PKCS11Constants.CKR_SESSION_HANDLE_INVALID);
        assertTrue(text(run(engine).failure()).contains("lost the session: CKR_SESSION_HANDLE_INVALID"));
        fake.failNextSign(PKCS11Constants.CKR_GENERAL_ERROR); // a refused operation keeps its session
        assertTrue(text(run(engine).failure()).contains("refused"));
        assertNull(run(engine).failure());

        assertEquals(1, engine.sessionFailures());
        assertEquals(0, engine.moduleReinitializations());
        assertEquals(1, fake.initializations());
        assertEquals(3, engine.sessionsOpened(), "login session, the worker's first, its reopened one");
    }

    @Test
    void shouldReinitializeTheModuleWhenTheDeviceWentAwayAndRecoverWhenItIsBack() throws Exception {
        Pkcs11Engine engine = open(builder("ec-key").threads(1));
        assertNull(run(engine).failure());
        fake.deviceGone();
        for (int i = 0; i < 3; i++) {
            String failure = text(run(engine).failure());
            assertTrue(failure.contains("CKR_DEVICE_ERROR") || failure.contains("CKR_CRYPTOKI_NOT_INITIALIZED"),
                    failure);
            assertTrue(failure.contains("the module cannot be re-initialised yet"), failure);
        }
        long whileGone = engine.moduleReinitializations();
        assertTrue(whileGone >= 1, "every failure with the device away tries again: " + whileGone);
        fake.deviceBack();
        AsyncJob<byte[]> first = run(engine); // re-initialises, or (when a try above got the module back) signs
        if (first.failure() != null) {
            assertTrue(text(first.failure()).contains("the module was re-initialised"), text(first.failure()));
        }
        assertNull(run(engine).failure(), "the device is back: the next operation signs");
        assertTrue(fake.isInitialized());
        assertFalse(engine.loginRefused());
    }

    @Test
    void shouldReinitializeTheModuleWhenTheTokenLeftTheSlotList() throws Exception {
        Pkcs11Engine engine = open(builder("ec-key").threads(1));
        assertNull(run(engine).failure());
        fake.removeToken();
        String removed = text(run(engine).failure());
        assertTrue(removed.contains("CKR_DEVICE_REMOVED"), removed);
        String absent = text(run(engine).failure());
        assertTrue(absent.contains("no token matching token='" + FakeCryptoki.TOKEN + "'"), absent);
        assertEquals(2, engine.moduleReinitializations(), "the session's CKR_DEVICE_REMOVED, then the slot list");
        fake.insertToken();
        assertNull(run(engine).failure());
        assertEquals(2, engine.moduleReinitializations());
    }

    @Test
    void shouldStopLoggingInWhenTheTokenRefusesThePinAndSayWhatToDo() throws Exception {
        Pkcs11Engine engine = open(builder("ec-key").threads(2));
        assertNull(run(engine).failure());
        fake.changePin("4711");
        reinitialize(); // as after the token or its p11-kit server restarted: every login is gone
        long reinitializations = engine.moduleReinitializations();
        int logins = fake.logins();

        for (int i = 0; i < 20; i++) {
            String text = text(run(engine).failure());
            assertTrue(text.contains("CKR_PIN_INCORRECT"), text);
            assertTrue(text.contains("fix the PIN file and rebuild the engine"), text);
        }
        assertTrue(engine.loginRefused());
        assertTrue(fake.logins() - logins <= 2, "at most one login try per worker, not one per operation: "
                + (fake.logins() - logins));
        assertEquals(reinitializations, engine.moduleReinitializations(), "a refused PIN is no reason to "
                + "re-initialise the module");

        Files.writeString(dir.resolve("pin"), "4711\n"); // what the message says to do works
        assertNull(run(open(builder("ec-key"))).failure());
    }

    @Test
    void shouldAdviseFewerThreadsWhenTheTokenHasNoSessionLeftAndTryAgainNextTime() throws Exception {
        fake.maxSessions(1); // the engine's login session takes it
        Pkcs11Engine engine = open(builder("ec-key").threads(1));
        for (int i = 0; i < 3; i++) {
            String text = text(run(engine).failure());
            assertTrue(text.contains("CKR_SESSION_COUNT"), text);
            assertTrue(text.contains("lower threads() below the token's session limit"), text);
        }
        assertEquals(0, engine.moduleReinitializations());
        assertFalse(engine.loginRefused());
        fake.maxSessions(2);
        assertNull(run(engine).failure(), "the next operation tries again");
    }

    @Test
    void shouldNotReinitializeTheModuleWhenTheKeyWasDeleted() throws Exception {
        Pkcs11Engine engine = open(builder("ec-key").threads(1));
        assertNull(run(engine).failure());
        fake.deleteKey("ec-key");
        reinitialize(); // the worker's session has to be opened again, and the key is not there
        long reinitializations = engine.moduleReinitializations();
        for (int i = 0; i < 5; i++) {
            String text = text(run(engine).failure());
            assertTrue(text.contains("no private key labelled 'ec-key'"), text);
        }
        assertEquals(reinitializations, engine.moduleReinitializations(), "a missing key is no reason to "
                + "re-initialise the module (C_Finalize would end the sessions of every engine of the module)");
        assertFalse(engine.loginRefused());
    }

    @Test
    void shouldAnswerEagainWhenTheQueueIsFullAndRunTheRetryLater() throws Exception {
        Pkcs11Engine engine = open(builder("ec-key").threads(1).queueCapacity(1));
        FakeCryptoki.Gate gate = fake.holdSigns();
        AsyncJobPool pool = onOwner(() -> new AsyncJobPool(8, owner));
        byte[] message = randomBytes(32);
        KeyOperation op = KeyOperation.sign(EC, message);
        List<AsyncWaitCtx> ctxs = new ArrayList<>();
        List<AsyncJob<byte[]>> jobs = new ArrayList<>();
        List<CountDownLatch> calls = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            AsyncWaitCtx ctx = new AsyncWaitCtx();
            CountDownLatch called = new CountDownLatch(1);
            ctx.setCallback(arg -> {
                called.countDown();
                return 1;
            }, null);
            EngineSession session = onOwner(() -> engine.newSession(ctx, owner));
            AsyncJob<byte[]> job = new AsyncJob<>(pool, ctx, j -> session.submit(j, op));
            assertEquals(AsyncStartResult.PAUSE, onOwner(job::start));
            if (i == 0) {
                assertTrue(gate.awaitEntered(), "the worker took the first operation");
            }
            ctxs.add(ctx);
            jobs.add(job);
            calls.add(called);
        }
        assertEquals(AsyncStatus.OK, ctxs.get(0).getStatus());
        assertEquals(AsyncStatus.OK, ctxs.get(1).getStatus());
        assertEquals(AsyncStatus.EAGAIN, ctxs.get(2).getStatus(), "third operation: queue of 1 is full");
        assertEquals(1, engine.queuedOperations());
        assertEquals(1, engine.rejectedOperations());

        gate.release();
        for (int i = 0; i < 2; i++) {
            assertTrue(calls.get(i).await(10, TimeUnit.SECONDS));
            assertEquals(AsyncStartResult.FINISH, onOwner(jobs.get(i)::resume));
        }
        // EAGAIN: the owner resumes the job itself, which runs the operation again; the worker may sign it before the
        // job has paused (FINISH at once) or after (PAUSE).
        AsyncStartResult retry = onOwner(jobs.get(2)::resume);
        assertEquals(2, jobs.get(2).runs());
        if (retry == AsyncStartResult.PAUSE) {
            assertTrue(calls.get(2).await(10, TimeUnit.SECONDS));
            assertEquals(AsyncStartResult.FINISH, onOwner(jobs.get(2)::resume));
        } else {
            assertEquals(AsyncStartResult.FINISH, retry);
        }
        for (AsyncJob<byte[]> job : jobs) {
            assertTrue(verify(EC, engine, message, job.result()));
        }
        assertEquals(3, engine.completedOperations());
        closeOnOwner(ctxs);
    }

    @Test
    void shouldFailQueuedOperationsCloseSessionsAndLogOutOnClose() throws Exception {
        Pkcs11Engine engine = open(builder("ec-key").threads(1).queueCapacity(4));
        FakeCryptoki.Gate gate = fake.holdSigns();
        AsyncJobPool pool = onOwner(() -> new AsyncJobPool(8, owner));
        List<AsyncJob<byte[]>> jobs = new ArrayList<>();
        List<AsyncWaitCtx> ctxs = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            AsyncWaitCtx ctx = new AsyncWaitCtx();
            ctx.setCallback(arg -> 1, null);
            EngineSession session = onOwner(() -> engine.newSession(ctx, owner));
            AsyncJob<byte[]> job = new AsyncJob<>(pool, ctx, j -> session.submit(j, KeyOperation.sign(EC,
                    randomBytes(16))));
            assertEquals(AsyncStartResult.PAUSE, onOwner(job::start));
            if (i == 0) {
                assertTrue(gate.awaitEntered());
            }
            jobs.add(job);
            ctxs.add(ctx);
        }
        assertEquals(2, engine.queuedOperations());
        assertTrue(fake.isLoggedIn());

        Thread closer = new Thread(engine::close, "closer");
        closer.start();
        assertTrue(gate.awaitInterrupted(), "close() interrupts the busy worker, which stays in the token");
        gate.release(); // the operation in progress finishes; the queued ones must not run
        closer.join(20_000);
        assertFalse(closer.isAlive());

        assertEquals(0, engine.liveWorkers());
        assertEquals(1, engine.completedOperations());
        assertEquals(2, engine.failedOperations());
        assertEquals(AsyncStartResult.FINISH, onOwner(jobs.get(0)::resume));
        for (int i = 1; i < 3; i++) {
            assertEquals(AsyncStartResult.ERR, onOwner(jobs.get(i)::resume));
            assertTrue(jobs.get(i).failure().getMessage().contains("closed"), jobs.get(i).failure().getMessage());
        }
        assertEquals(List.of(1L), fake.logouts(), "logged out through the login session");
        assertEquals(0, fake.openSessions());
        assertEquals(0, engine.openSessions());
        assertFalse(fake.isInitialized(), "the last engine of the module finalises it");
        engine.close(); // idempotent
        assertEquals(1, fake.finalizations());
        closeOnOwner(ctxs);
    }

    @Test
    void shouldCountItsLoginOutAtCloseEvenWhenAWorkerIsStillBusy() throws Exception {
        Pkcs11Engine busy = open(builder("ec-key").threads(1).closeTimeout(Duration.ZERO));
        Pkcs11Engine other = open(builder("ec-key").threads(1));
        FakeCryptoki.Gate gate = fake.holdSigns();
        Thread runner = new Thread(() -> {
            try {
                run(busy);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }, "busy-runner");
        runner.start();
        try {
            assertTrue(gate.awaitEntered(), "the worker is in the token");
            busy.close(); // does not wait: the worker stays busy
            assertEquals(1, busy.liveWorkers(), "the worker is still busy");
            assertEquals(List.of(), fake.logouts(), "the other engine is still logged in");
            assertTrue(fake.isLoggedIn());
        } finally {
            gate.release();
            runner.join(30_000);
        }
        other.close(); // now the last engine of the token: it logs out
        assertEquals(1, fake.logouts().size(), "the busy engine's close counted its login out");
        assertFalse(fake.isLoggedIn());
    }

    @Test
    void shouldNeverLogOutThroughASessionOfAnOlderModuleGeneration() throws Exception {
        Pkcs11Engine engine = open(builder("ec-key").threads(1));
        long stale = engine.loginSessionHandle();
        reinitialize(); // the engine's login session is gone; the fake numbers handles from 1 again
        TokenModule module = TokenModule.acquire(fake.path(), fake.loader()); // keeps the module initialised
        try {
            Cryptoki other = module.cryptoki(); // another application of the token, on the same module
            long reused = other.openSession(FakeCryptoki.SLOT);
            assertEquals(stale, reused, "the new session has the engine's old handle");
            other.login(reused, FakeCryptoki.PIN.toCharArray());

            engine.close();

            assertEquals(List.of(), fake.logouts(), "another session's login ended through the stale handle");
            assertTrue(fake.isLoggedIn());
            assertEquals(1, fake.openSessions(), "the other application's session is still open");
            other.closeSession(reused);
        } finally {
            module.release();
        }
    }

    @Test
    void shouldStayLoggedInUntilTheLastEngineOfTheTokenCloses() throws Exception {
        fake.addKey("rsa-key", new byte[]{2}, Algorithm.rsa2048);
        Pkcs11Engine first = open(builder("rsa-key"));
        Pkcs11Engine second = open(builder("ec-key"));
        assertEquals(1, fake.initializations(), "one module for both engines");
        first.close();
        assertTrue(fake.isLoggedIn());
        assertNull(run(second).failure());
        second.close();
        assertFalse(fake.isLoggedIn());
        assertEquals(1, fake.logouts().size());
        assertEquals(0, fake.openSessions());
        assertFalse(fake.isInitialized());
    }

    @Test
    void shouldRefuseAWrongPinAtBuildAndReleaseTheModule() throws Exception {
        fake.changePin("4711");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> open(builder("ec-key")));
        assertTrue(e.getMessage().contains("wrong PIN for the token token='" + FakeCryptoki.TOKEN + "'"),
                e.getMessage());
        assertTrue(e.getMessage().contains("fix the PIN in the PIN file"), e.getMessage());
        assertFalse(e.getMessage().contains(FakeCryptoki.PIN), "the PIN is never shown");
        assertFalse(fake.isInitialized());
        assertEquals(0, fake.openSessions());
    }

    @Test
    void shouldRefuseAKeyThatDoesNotMatchItsCertificate() throws Exception {
        FakeCryptoki.Key foreign = new FakeCryptoki().addKey("foreign", new byte[]{9}, Algorithm.ecp256);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> open(builder("ec-key").certificateChain(foreign.certificate())));
        assertTrue(e.getMessage().contains("does not match the certificate CN=foreign"), e.getMessage());
        assertFalse(fake.isInitialized());
    }

    @Test
    void shouldRefuseANegativeCloseTimeout() {
        assertThrows(IllegalArgumentException.class, () -> Pkcs11Engine.builder().closeTimeout(Duration.ofMillis(-1)));
    }

    // ---- helpers ----

    private Pkcs11EngineBuilder builder(String keyLabel) throws Exception {
        Path pin = dir.resolve("pin");
        if (!Files.exists(pin)) {
            Files.createFile(pin, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            Files.writeString(pin, FakeCryptoki.PIN + "\n");
        }
        return Pkcs11Engine.builder().modulePath(fake.path()).tokenLabel(FakeCryptoki.TOKEN).pinFile(pin)
                .keyLabel(keyLabel);
    }

    private Pkcs11Engine open(Pkcs11EngineBuilder b) {
        Pkcs11Engine engine = Pkcs11EngineFactory.open(b.settings(), fake.loader());
        engines.add(engine);
        return engine;
    }

    /** Finalises and initialises the fake's module again (as a worker does after its device came back). */
    private void reinitialize() throws PKCS11Exception {
        TokenModule module = TokenModule.acquire(fake.path(), fake.loader());
        try {
            module.reinitialize(module.generation());
        } finally {
            module.release();
        }
    }

    private void assertSigns(Pkcs11Engine engine, SignatureScheme scheme) throws Exception {
        byte[] message = randomBytes(64);
        AsyncJob<byte[]> job = run(engine, KeyOperation.sign(scheme, message));
        assertNull(job.failure(), () -> scheme + ": " + text(job.failure()));
        assertTrue(verify(scheme, engine, message, job.result()), scheme + " verifies with the certificate's key");
    }

    private AsyncJob<byte[]> run(Pkcs11Engine engine) throws Exception {
        return run(engine, KeyOperation.sign(EC, randomBytes(32)));
    }

    /** Runs one operation through a real job on the callback path, the owner thread resuming it; the ended job. */
    private AsyncJob<byte[]> run(Pkcs11Engine engine, KeyOperation op) throws Exception {
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        CountDownLatch called = new CountDownLatch(1);
        ctx.setCallback(arg -> {
            called.countDown();
            return 1;
        }, null);
        AsyncJobPool pool = onOwner(() -> new AsyncJobPool(1, owner));
        EngineSession session = onOwner(() -> engine.newSession(ctx, owner));
        AsyncJob<byte[]> job = new AsyncJob<>(pool, ctx, j -> session.submit(j, op));
        AsyncStartResult r = onOwner(job::start);
        if (r == AsyncStartResult.PAUSE) {
            assertTrue(called.await(30, TimeUnit.SECONDS), "the engine signalled the job");
            r = onOwner(job::resume);
        }
        AsyncStartResult ended = r;
        assertTrue(ended == AsyncStartResult.FINISH || ended == AsyncStartResult.ERR, ended::toString);
        onOwner(() -> {
            session.close();
            ctx.close();
            return null;
        });
        return job;
    }

    private <T> T onOwner(Callable<T> task) throws Exception {
        return owner.submit(task).get(30, TimeUnit.SECONDS);
    }

    private void closeOnOwner(List<AsyncWaitCtx> ctxs) throws Exception {
        for (AsyncWaitCtx ctx : ctxs) {
            onOwner(() -> {
                ctx.close();
                return null;
            });
        }
    }

    private static boolean verify(SignatureScheme scheme, Pkcs11Engine engine, byte[] message, byte[] sig)
            throws Exception {
        Signature v = Signature.getInstance(scheme.jcaAlgorithm());
        if (scheme.isPss()) {
            v.setParameter(scheme.parameters());
        }
        v.initVerify(engine.certificateChain()[0].getPublicKey());
        v.update(message);
        return v.verify(sig);
    }

    private static byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        new SecureRandom().nextBytes(b);
        return b;
    }

    private static String text(Throwable t) {
        assertNotNull(t, "the operation failed");
        StringWriter w = new StringWriter();
        t.printStackTrace(new PrintWriter(w));
        return w.toString();
    }
}
