package io.asyncctx.engine.pkcs11;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncJobPool;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.SignatureScheme;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.xipki.pkcs11.wrapper.PKCS11Constants;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.Slot;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.security.GeneralSecurityException;
import java.security.Signature;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What the PKCS#11 engine does when a token refuses it, against real SoftHSM2 tokens (one per test, since the tests
 * change PINs and delete keys): a refused PIN stops the logins, a deleted key or a session limit does not re-initialise
 * the module (which would end every engine's sessions), a token that left the slot list does; and close counts its
 * login and never logs out through a handle of an older initialisation.
 */
@Timeout(120)
class Pkcs11TokenFailureTest {

    private static final String NEW_PIN = "changed-4711";

    @BeforeAll
    static void needSoftHsm() {
        SoftHsmToken.assumeAvailable();
    }

    @Test
    void shouldStopLoggingInWhenTheTokenRefusesThePinAndSayWhatToDo() throws Exception {
        try (SoftHsmToken token = SoftHsmToken.withKey(SoftHsmToken.KeyType.EC_P256);
             Pkcs11Engine engine = token.engineBuilder().threads(2).build()) {
            assertNull(run(engine).failure());
            // The user PIN is changed on the token, and the module is initialised again (as after the token or its
            // p11-kit server restarted): the engine's login is gone and its PIN file holds the old PIN.
            token.pkcs11Tool("--change-pin", "--new-pin", NEW_PIN);
            reinitialize(token);
            long reinitializations = engine.moduleReinitializations();
            long sessionsOpened = engine.sessionsOpened();

            for (int i = 0; i < 20; i++) {
                Throwable failure = run(engine).failure();
                assertNotNull(failure, "operation " + i + " cannot succeed with the old PIN");
                String text = text(failure);
                assertTrue(text.contains("CKR_PIN_INCORRECT"), text);
                assertTrue(text.contains("fix the PIN file and rebuild the engine"), text);
            }
            assertTrue(engine.loginRefused());
            assertTrue(engine.sessionsOpened() - sessionsOpened <= 2, "at most one login try per worker, not one per "
                    + "operation: " + (engine.sessionsOpened() - sessionsOpened) + " sessions opened");
            assertEquals(reinitializations, engine.moduleReinitializations(), "a refused PIN is no reason to "
                    + "re-initialise the module");
            assertFalse(tokenFlag(token, PKCS11Constants.CKF_USER_PIN_LOCKED), "the user PIN is not locked");
            token.run("pkcs11-tool", "--module", SoftHsmToken.SYSTEM_MODULE.toString(), "--token-label",
                    token.tokenLabel(), "--login", "--pin", NEW_PIN, "--list-objects");

            // What the message says to do works: an engine built with the current PIN signs.
            java.nio.file.Files.writeString(token.pinFile(), NEW_PIN + "\n");
            try (Pkcs11Engine rebuilt = token.engineBuilder().build()) {
                assertNull(run(rebuilt).failure());
            }
        }
    }

    @Test
    void shouldNotReinitializeTheModuleWhenTheKeyWasDeleted() throws Exception {
        try (SoftHsmToken token = SoftHsmToken.withKey(SoftHsmToken.KeyType.EC_P256);
             Pkcs11Engine engine = token.engineBuilder().threads(1).build()) {
            assertNull(run(engine).failure());
            token.pkcs11Tool("--delete-object", "--type", "privkey", "--label", token.keyLabel());
            reinitialize(token); // the worker's session has to be opened again, and the key is not there
            long reinitializations = engine.moduleReinitializations();
            for (int i = 0; i < 10; i++) {
                Throwable failure = run(engine).failure();
                assertNotNull(failure, "operation " + i + " has no key");
                assertTrue(text(failure).contains("no private key"), text(failure));
            }
            assertEquals(reinitializations, engine.moduleReinitializations(), "a missing key is no reason to "
                    + "re-initialise the module (C_Finalize would end the sessions of every engine of the module)");
            assertFalse(engine.loginRefused());
        }
    }

    @Test
    void shouldAdviseFewerThreadsWhenTheTokenHasNoSessionLeftWithoutReinitializing() throws Exception {
        // SoftHSM2 has no session limit, so the token's answer is the real exception the wrapper throws for it.
        try (SoftHsmToken token = SoftHsmToken.withKey(SoftHsmToken.KeyType.EC_P256)) {
            TokenModule module = TokenModule.acquire(token.modulePath());
            try {
                TokenWorker worker = worker(token, module);
                long reinitializations = module.reinitializations();
                GeneralSecurityException e = openFailed(worker, module,
                        new PKCS11Exception(PKCS11Constants.CKR_SESSION_COUNT));
                assertTrue(e.getMessage().contains("CKR_SESSION_COUNT"), e.getMessage());
                assertTrue(e.getMessage().contains("lower threads() below the token's session limit"), e.getMessage());
                assertEquals(reinitializations, module.reinitializations());
            } finally {
                module.release();
            }
        }
    }

    @Test
    void shouldReinitializeOnlyWhenTheDeviceOrTheTokenWentAway() throws Exception {
        try (SoftHsmToken token = SoftHsmToken.withKey(SoftHsmToken.KeyType.EC_P256)) {
            TokenModule module = TokenModule.acquire(token.modulePath());
            try {
                TokenWorker worker = worker(token, module);
                long before = module.reinitializations();
                openFailed(worker, module, new TokenAccess.TokenAbsentException("no token matching ..."));
                assertEquals(before + 1, module.reinitializations(), "the token left the slot list");
                openFailed(worker, module, new PKCS11Exception(PKCS11Constants.CKR_DEVICE_ERROR));
                assertEquals(before + 2, module.reinitializations(), "the device went away");
                openFailed(worker, module, new PKCS11Exception(PKCS11Constants.CKR_TOKEN_NOT_PRESENT));
                assertEquals(before + 3, module.reinitializations(), "the token is not in its slot");
                openFailed(worker, module, new PKCS11Exception(PKCS11Constants.CKR_GENERAL_ERROR));
                openFailed(worker, module, new IllegalStateException("no private key labelled 'x'"));
                assertEquals(before + 3, module.reinitializations(), "an error of this engine alone");
                GeneralSecurityException locked = openFailed(worker, module,
                        new PKCS11Exception(PKCS11Constants.CKR_PIN_LOCKED));
                assertTrue(locked.getMessage().contains("unlock the user PIN with the SO PIN"), locked.getMessage());
                assertTrue(locked.getMessage().contains("fix the PIN file and rebuild the engine"),
                        locked.getMessage());
                assertEquals(before + 3, module.reinitializations());
            } finally {
                module.release();
            }
        }
    }

    @Test
    void shouldNeverLogOutThroughAHandleOfAnOlderInitialization() throws Exception {
        try (SoftHsmToken token = SoftHsmToken.withKey(SoftHsmToken.KeyType.EC_P256)) {
            Pkcs11Engine engine = token.engineBuilder().threads(1).build();
            long staleHandle = engine.loginSessionHandle();
            reinitialize(token); // the engine's login session is gone; its handle number is free again
            TokenModule module = TokenModule.acquire(token.modulePath());
            List<Session> sessions = new ArrayList<>();
            try {
                // SoftHSM2 numbers handles from 1 again after C_Initialize: open sessions until one gets the old one.
                Session reused = null;
                for (int i = 0; i < 64 && reused == null; i++) {
                    Session s = slot(module, token).getToken().openSession(false);
                    sessions.add(s);
                    if (s.getSessionHandle() == staleHandle) {
                        reused = s;
                    }
                }
                assertNotNull(reused, "no new session reuses handle " + staleHandle + " (handles: "
                        + sessions.stream().map(Session::getSessionHandle).toList() + ")");
                reused.login(PKCS11Constants.CKU_USER, token.pin().toCharArray());
                assertEquals(PKCS11Constants.CKS_RO_USER_FUNCTIONS, reused.getSessionInfo().getState());

                engine.close(); // the last engine of the token: it logs out, but not through the stale handle

                assertEquals(PKCS11Constants.CKS_RO_USER_FUNCTIONS, reused.getSessionInfo().getState(),
                        "another session's login was ended through the engine's stale handle");
                reused.logout();
            } finally {
                engine.close();
                for (Session s : sessions) {
                    s.closeSession();
                }
                module.release();
            }
        }
    }

    // ---- helpers ----

    /** Finalises and initialises the token's module again (what a worker does after its device came back). */
    private static void reinitialize(SoftHsmToken token) throws PKCS11Exception {
        TokenModule module = TokenModule.acquire(token.modulePath());
        try {
            module.reinitialize(module.generation());
        } finally {
            module.release();
        }
    }

    private static TokenWorker worker(SoftHsmToken token, TokenModule module) {
        TokenAccess access = new TokenAccess(module, token.engineBuilder().settings(), token.pin().toCharArray());
        return new TokenWorker(access, TokenMechanisms.KeyKind.EC, new AtomicLong());
    }

    /** The worker's reaction to a failure to open its session, under the module's read lock as on its thread. */
    private static GeneralSecurityException openFailed(TokenWorker worker, TokenModule module, Exception e) {
        module.calls().lock();
        try {
            return worker.openFailed(e);
        } finally {
            module.calls().unlock();
        }
    }

    private static Slot slot(TokenModule module, SoftHsmToken token) throws PKCS11Exception {
        for (Slot slot : Pkcs11EngineTest.wrapper(module).getSlotList(true)) {
            if (slot.getSlotID() == token.slotId()) {
                return slot;
            }
        }
        throw new AssertionError("slot " + token.slotId() + " not found");
    }

    private static boolean tokenFlag(SoftHsmToken token, long flag) throws PKCS11Exception {
        TokenModule module = TokenModule.acquire(token.modulePath());
        try {
            return (slot(module, token).getToken().getTokenInfo().getFlags() & flag) != 0;
        } finally {
            module.release();
        }
    }

    /** Runs one ECDSA signature through a real job on the callback path; returns the ended job. */
    private static AsyncJob<byte[]> run(Pkcs11Engine engine) throws InterruptedException {
        Executor owner = Runnable::run;
        AsyncJobPool pool = new AsyncJobPool(1, owner);
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        CountDownLatch signalled = new CountDownLatch(1);
        ctx.setCallback(arg -> {
            signalled.countDown();
            return 1;
        }, null);
        EngineSession session = engine.newSession(ctx, owner);
        byte[] message = "a challenge".getBytes();
        AsyncJob<byte[]> job = new AsyncJob<>(pool, ctx,
                j -> session.submit(j, KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256, message)));
        AsyncStartResult r = job.start();
        if (r == AsyncStartResult.PAUSE) {
            assertTrue(signalled.await(30, TimeUnit.SECONDS), "the engine signalled the job");
            r = job.resume();
        }
        assertTrue(r == AsyncStartResult.FINISH || r == AsyncStartResult.ERR, r::toString);
        if (job.failure() == null) {
            try {
                Signature v = Signature.getInstance("SHA256withECDSA");
                v.initVerify(engine.publicKey());
                v.update(message);
                assertTrue(v.verify(job.result()), "the token's signature verifies");
            } catch (GeneralSecurityException e) {
                throw new AssertionError(e);
            }
        }
        session.close();
        ctx.close();
        return job;
    }

    private static String text(Throwable t) {
        StringWriter w = new StringWriter();
        t.printStackTrace(new PrintWriter(w));
        return w.toString();
    }
}
