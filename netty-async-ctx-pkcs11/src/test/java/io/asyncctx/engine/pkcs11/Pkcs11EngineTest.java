package io.asyncctx.engine.pkcs11;

import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncJobPool;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncStatus;
import io.asyncctx.AsyncWaitCtx;
import io.asyncctx.ChangedFds;
import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.EventFd;
import io.asyncctx.engine.KeyOperation;
import io.asyncctx.engine.SignatureScheme;
import io.asyncctx.testkit.Await;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
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
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The PKCS#11 engine against real SoftHSM2 tokens, driven through real AsyncWaitCtx / AsyncJob / AsyncJobPool on an
 * owner thread, with both notification paths.
 */
@Timeout(120)
class Pkcs11EngineTest {

    private static final SignatureScheme[] RSA_SCHEMES = {SignatureScheme.RSA_PKCS1_SHA1,
        SignatureScheme.RSA_PKCS1_SHA256, SignatureScheme.RSA_PKCS1_SHA384, SignatureScheme.RSA_PKCS1_SHA512,
        SignatureScheme.RSA_PSS_RSAE_SHA256, SignatureScheme.RSA_PSS_RSAE_SHA384, SignatureScheme.RSA_PSS_RSAE_SHA512};
    private static final SignatureScheme[] EC_SCHEMES = {SignatureScheme.ECDSA_SHA1,
        SignatureScheme.ECDSA_SECP256R1_SHA256, SignatureScheme.ECDSA_SECP384R1_SHA384,
        SignatureScheme.ECDSA_SECP521R1_SHA512};

    private static SoftHsmToken token;
    private static ExecutorService owner;
    private static Thread ownerThread;

    @BeforeAll
    static void createToken() throws Exception {
        SoftHsmToken.assumeAvailable();
        token = SoftHsmToken.builder()
                .key("rsa-key", SoftHsmToken.KeyType.RSA_2048)
                .key("ec-key", SoftHsmToken.KeyType.EC_P256)
                .key("bare-key", SoftHsmToken.KeyType.RSA_2048, SoftHsmToken.CertMode.NONE)
                .key("wrong-cert", SoftHsmToken.KeyType.RSA_2048, SoftHsmToken.CertMode.FOREIGN)
                .key("ed-key", SoftHsmToken.KeyType.ED25519)
                .build();
        owner = Executors.newSingleThreadExecutor(r -> {
            ownerThread = new Thread(r, "owner");
            return ownerThread;
        });
    }

    @AfterAll
    static void closeToken() throws Exception {
        if (owner != null) {
            owner.shutdownNow();
            assertTrue(owner.awaitTermination(10, TimeUnit.SECONDS));
        }
        if (token != null) {
            token.close();
        }
    }

    private static Pkcs11EngineBuilder builder(String keyLabel) {
        return token.engineBuilder().keyLabel(keyLabel);
    }

    @Test
    void shouldSignEveryRsaSchemeOnTheTokenThroughTheCallbackPath() throws Exception {
        try (Pkcs11Engine engine = builder("rsa-key").build()) {
            assertEquals("RSA", engine.keyAlgorithm());
            assertEquals(token.certificateChain("rsa-key")[0], engine.certificateChain()[0]);
            assertEquals(token.certificateChain("rsa-key")[0].getPublicKey(), engine.publicKey());
            for (SignatureScheme scheme : RSA_SCHEMES) {
                byte[] message = randomBytes(146);
                byte[] sig = runWithCallback(engine, KeyOperation.sign(scheme, message));
                assertTrue(verify(scheme, engine.publicKey(), message, sig), scheme + " does not verify");
                assertEquals(256, sig.length);
            }
            assertEquals(RSA_SCHEMES.length, engine.completedOperations());
        }
    }

    @Test
    void shouldSignEveryEcdsaSchemeOnTheTokenThroughTheFdPath() throws Exception {
        for (FdMode mode : FdMode.values()) {
            try (Pkcs11Engine engine = builder("ec-key").fdMode(mode).build()) {
                assertEquals("EC", engine.keyAlgorithm());
                for (SignatureScheme scheme : EC_SCHEMES) {
                    byte[] message = randomBytes(146);
                    byte[] sig = runWithFd(engine, KeyOperation.sign(scheme, message));
                    assertTrue(verify(scheme, engine.publicKey(), message, sig), scheme + " does not verify");
                }
                assertEquals(EC_SCHEMES.length, engine.completedOperations());
                assertEquals(0, engine.sharedFdCount());
            }
        }
    }

    @Test
    void shouldDecryptRawRsaOnTheTokenThroughBothPaths() throws Exception {
        try (Pkcs11Engine engine = builder("rsa-key").fdMode(FdMode.PER_CTX).build()) {
            RSAPublicKey pub = (RSAPublicKey) engine.publicKey();
            for (int i = 0; i < 2; i++) {
                byte[] plain = new byte[256];
                byte[] body = new BigInteger(pub.getModulus().bitLength() - 2, new SecureRandom()).toByteArray();
                System.arraycopy(body, 0, plain, 256 - body.length, body.length);
                Cipher enc = Cipher.getInstance("RSA/ECB/NoPadding");
                enc.init(Cipher.ENCRYPT_MODE, pub);
                byte[] cipherText = enc.doFinal(plain);
                KeyOperation op = KeyOperation.decrypt(cipherText);
                byte[] back = i == 0 ? runWithCallback(engine, op) : runWithFd(engine, op);
                assertArrayEquals(plain, back);
            }
        }
    }

    @Test
    void shouldSelectTheTokenBySlotId() throws Exception {
        try (Pkcs11Engine engine = builder("ec-key").slot(token.slotId()).build()) {
            byte[] message = randomBytes(64);
            byte[] sig = runWithCallback(engine, KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256, message));
            assertTrue(verify(SignatureScheme.ECDSA_SECP256R1_SHA256, engine.publicKey(), message, sig));
        }
    }

    @Test
    void shouldKeepThePrivateKeyOnTheTokenAndSignThere() throws Exception {
        try (Pkcs11Engine engine = builder("rsa-key").build()) {
            // pkcs11-tool reads the attributes: CKA_SENSITIVE true, CKA_EXTRACTABLE false (it would print
            // "extractable").
            String objects = token.pkcs11Tool("--list-objects", "--type", "privkey", "--label", "rsa-key");
            String access = objects.lines().filter(l -> l.trim().startsWith("Access:")).findFirst().orElseThrow();
            assertTrue(access.contains("sensitive") && !access.contains("extractable"), access);

            // The signature is the token key's: a software key of the same kind makes one that does not verify.
            byte[] message = randomBytes(100);
            byte[] tokenSig = runWithCallback(engine, KeyOperation.sign(SignatureScheme.RSA_PKCS1_SHA256, message));
            KeyPairGenerator gen = KeyPairGenerator.getInstance("RSA");
            gen.initialize(2048);
            Signature soft = Signature.getInstance("SHA256withRSA");
            soft.initSign(gen.generateKeyPair().getPrivate());
            soft.update(message);
            byte[] softSig = soft.sign();
            assertTrue(verify(SignatureScheme.RSA_PKCS1_SHA256, engine.publicKey(), message, tokenSig));
            assertFalse(verify(SignatureScheme.RSA_PKCS1_SHA256, engine.publicKey(), message, softSig));
            assertEquals(1, engine.completedOperations());
        }
    }

    @Test
    void shouldStayLoggedInUntilTheLastEngineOfTheTokenCloses() throws Exception {
        try (Pkcs11Engine first = builder("rsa-key").build()) {
            try (Pkcs11Engine second = builder("ec-key").build()) {
                first.close();
                assertTrue(isLoggedIn());
                byte[] message = randomBytes(50);
                byte[] sig = runWithFd(second, KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256, message));
                assertTrue(verify(SignatureScheme.ECDSA_SECP256R1_SHA256, second.publicKey(), message, sig));
            }
            assertFalse(isLoggedIn());
        }
    }

    @Test
    void shouldNameTheMissingModuleLibrary() {
        Path missing = token.directory().resolve("no-such-module.so");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> builder("rsa-key").modulePath(missing).build());
        assertTrue(e.getMessage().contains("PKCS#11 module library not found") && e.getMessage().contains(
                missing.toString()) && e.getMessage().contains("install"), e.getMessage());
    }

    @Test
    void shouldNameAModuleThatIsNotAPkcs11Module() throws Exception {
        Path notPkcs11 = Path.of("/usr/lib/x86_64-linux-gnu/libz.so.1").toRealPath();
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> builder("rsa-key").modulePath(notPkcs11).build());
        assertTrue(e.getMessage().contains("cannot load the PKCS#11 module " + notPkcs11)
                && e.getMessage().contains("does not export C_GetFunctionList")
                && e.getMessage().contains("p11-kit-client.so"), e.getMessage());
        Path text = token.directory().resolve("not-a-library.so");
        Files.writeString(text, "C_GetFunctionList\n");
        IllegalStateException notElf = assertThrows(IllegalStateException.class,
                () -> builder("rsa-key").modulePath(text).build());
        assertTrue(notElf.getMessage().contains("it is not a shared library"), notElf.getMessage());
    }

    @Test
    void shouldSelectTheTokenBySerialAndTheKeyByUri() throws Exception {
        String serial = token.run("pkcs11-tool", "--module", SoftHsmToken.SYSTEM_MODULE.toString(), "-L").lines()
                .filter(l -> l.contains("serial num")).map(l -> l.substring(l.indexOf(':') + 1).strip())
                .findFirst().orElseThrow();
        try (Pkcs11Engine engine = Pkcs11Engine.builder().uri("pkcs11:serial=" + serial + ";object=ec-key;type=private"
                + "?module-path=" + token.modulePath() + "&pin-source=file:" + token.pinFile()).build()) {
            assertEquals(token.slotId(), engine.slotId());
            byte[] message = randomBytes(32);
            byte[] sig = runWithCallback(engine, KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256, message));
            assertTrue(verify(SignatureScheme.ECDSA_SECP256R1_SHA256, engine.publicKey(), message, sig));
        }
        try (Pkcs11Engine engine = Pkcs11Engine.builder().uri("pkcs11:slot-id=" + token.slotId() + ";object=rsa-key"
                + "?module-path=" + token.modulePath() + "&pin-source=file:" + token.pinFile()).build()) {
            assertEquals("RSA", engine.keyAlgorithm());
        }
    }

    @Test
    void shouldReportAWrongPinWithoutShowingIt() throws Exception {
        Path wrong = token.directory().resolve("wrong-pin");
        Files.writeString(wrong, "not-" + token.pin() + "\n");
        Files.setPosixFilePermissions(wrong, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> builder("rsa-key").pinFile(wrong).build());
        assertTrue(e.getMessage().contains("CKR_PIN_INCORRECT") && e.getMessage().contains(wrong.toString()),
                e.getMessage());
        assertFalse(stackText(e).contains("not-" + token.pin()), "the PIN must not appear in the error");
        assertFalse(isLoggedIn());
    }

    @Test
    void shouldReportAnUnsetPinEnvironmentVariable() {
        String name = "ASYNCCTX_NO_SUCH_PIN_VARIABLE";
        assumeTrue(System.getenv(name) == null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> builder("rsa-key").pinEnvironmentVariable(name).build());
        assertTrue(e.getMessage().contains(name) && e.getMessage().contains("not set"), e.getMessage());
    }

    @Test
    void shouldListTheTokenLabelsFoundWhenTheLabelIsUnknown() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> builder("rsa-key").tokenLabel("no-such-token").build());
        assertTrue(e.getMessage().contains("no token matching token='no-such-token'")
                && e.getMessage().contains(token.tokenLabel()), e.getMessage());
    }

    @Test
    void shouldListTheAliasesFoundWhenTheKeyLabelIsAbsent() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> builder("no-such-key").build());
        assertTrue(e.getMessage().contains("no-such-key") && e.getMessage().contains("'rsa-key' id=01")
                && e.getMessage().contains("'ec-key' id=02") && e.getMessage().contains("softhsm2-util --import"),
                e.getMessage());
    }

    @Test
    void shouldUseAKeyOnlyTokenKeyWithTheCertificateFromAFile() throws Exception {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> builder("bare-key").build());
        assertTrue(e.getMessage().contains("no certificate given and none on the token")
                && e.getMessage().contains("--cert FILE"), e.getMessage());
        try (Pkcs11Engine engine = builder("bare-key").certificateChain(token.certificateChain("bare-key")).build()) {
            byte[] message = randomBytes(80);
            byte[] sig = runWithFd(engine, KeyOperation.sign(SignatureScheme.RSA_PSS_RSAE_SHA256, message));
            assertTrue(verify(SignatureScheme.RSA_PSS_RSAE_SHA256, engine.publicKey(), message, sig));
        }
    }

    @Test
    void shouldFindTheKeyByIdAlone() throws Exception {
        try (Pkcs11Engine engine = Pkcs11Engine.builder().modulePath(token.modulePath())
                .uri("pkcs11:token=" + token.tokenLabel() + ";id=%02;type=private").pinFile(token.pinFile()).build()) {
            assertEquals("EC", engine.keyAlgorithm());
            assertEquals(token.certificateChain("ec-key")[0], engine.certificateChain()[0]);
        }
    }

    @Test
    void shouldRefuseAKeyThatDoesNotMatchItsCertificate() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> builder("wrong-cert").build());
        assertTrue(e.getMessage().contains("does not match the certificate"), e.getMessage());
        IllegalStateException other = assertThrows(IllegalStateException.class, () -> builder("rsa-key")
                .certificateChain(token.certificateChain("bare-key")).build());
        assertTrue(other.getMessage().contains("does not match the certificate"), other.getMessage());
        IllegalStateException kind = assertThrows(IllegalStateException.class, () -> builder("rsa-key")
                .certificateChain(token.certificateChain("ec-key")).build());
        assertTrue(kind.getMessage().contains("holds a EC key but the token key is RSA"), kind.getMessage());
        assertFalse(isLoggedIn(), "a failed build logs out");
    }

    @Test
    void shouldSignWithEd25519OnTheTokenThroughBothPaths() throws Exception {
        try (Pkcs11Engine engine = builder("ed-key").build()) {
            assertEquals("Ed25519", engine.keyAlgorithm());
            for (int i = 0; i < 2; i++) {
                byte[] message = randomBytes(146);
                KeyOperation op = KeyOperation.sign(SignatureScheme.ED25519, message);
                byte[] sig = i == 0 ? runWithCallback(engine, op) : runWithFd(engine, op);
                assertEquals(64, sig.length);
                assertTrue(verify(SignatureScheme.ED25519, engine.publicKey(), message, sig));
            }
        }
    }

    @Test
    void shouldRefuseAWorldReadablePinFileAndAPinInTheUri() throws Exception {
        Path open = token.directory().resolve("open-pin");
        Files.writeString(open, token.pin() + "\n");
        Files.setPosixFilePermissions(open, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> builder("rsa-key").pinFile(open).build());
        assertTrue(e.getMessage().contains("chmod 600 " + open), e.getMessage());
        assertFalse(stackText(e).contains(token.pin()));
        IllegalArgumentException inUri = assertThrows(IllegalArgumentException.class,
                () -> builder("rsa-key").uri("pkcs11:object=rsa-key?pin-value=" + token.pin()));
        assertTrue(inUri.getMessage().contains("pin-source=file:"), inUri.getMessage());
    }

    @Test
    void shouldCloseEverySessionOnClose() throws Exception {
        Pkcs11Engine engine = builder("rsa-key").threads(3).build();
        List<Callable<byte[]>> work = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            work.add(() -> runWithCallback(engine, KeyOperation.sign(SignatureScheme.RSA_PKCS1_SHA256,
                    randomBytes(32))));
        }
        ExecutorService clients = Executors.newFixedThreadPool(3);
        try {
            for (java.util.concurrent.Future<byte[]> f : clients.invokeAll(work)) {
                assertEquals(256, f.get().length);
            }
        } finally {
            clients.shutdownNow();
        }
        assertTrue(engine.openSessions() >= 2 && engine.openSessions() <= 4, "the login session and one per worker "
                + "that worked: " + engine.openSessions());
        assertEquals(engine.openSessions(), engine.sessionsOpened());
        engine.close();
        assertEquals(0, engine.openSessions(), "no session left open after close");
        assertEquals(0, engine.sessionFailures());
    }

    // ---- helpers ----

    /** Runs one operation through a real job with the ctx's callback set; returns the result. */
    private static byte[] runWithCallback(Pkcs11Engine engine, KeyOperation op) throws Exception {
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        CountDownLatch called = new CountDownLatch(1);
        Thread[] callbackThread = new Thread[1];
        ctx.setCallback(arg -> {
            callbackThread[0] = Thread.currentThread();
            called.countDown();
            return 1;
        }, "arg");
        AsyncJobPool pool = onOwner(() -> new AsyncJobPool(1, owner));
        EngineSession session = onOwner(() -> engine.newSession(ctx, owner));
        AsyncJob<byte[]> job = new AsyncJob<>(pool, ctx, j -> session.submit(j, op));
        // The worker may complete before start() has paused the job: then start() answers FINISH at once.
        AsyncStartResult started = onOwner(job::start);
        assertTrue(started == AsyncStartResult.PAUSE || started == AsyncStartResult.FINISH, started::toString);
        assertEquals(AsyncStatus.OK, ctx.getStatus());
        assertTrue(ctx.getChangedFds().isEmpty(), "no wait fd on the callback path");
        assertTrue(called.await(30, TimeUnit.SECONDS), "callback");
        assertTrue(callbackThread[0].getName().startsWith(engine.name() + "-worker-"), callbackThread[0].getName());
        if (started == AsyncStartResult.PAUSE) {
            assertEquals(AsyncStartResult.FINISH, onOwner(job::resume), () -> String.valueOf(job.failure()));
        }
        assertEquals(AsyncJob.State.FINISHED, job.state());
        onOwner(() -> {
            session.close();
            ctx.close();
            return null;
        });
        return job.result();
    }

    /** True while {@code fd} is an open eventfd of this process. */
    private static boolean isEventFd(int fd) {
        try {
            return java.nio.file.Files.readSymbolicLink(java.nio.file.Path.of("/proc/self/fd/" + fd)).toString()
                    .contains("eventfd");
        } catch (java.io.IOException e) {
            return false; // closed
        }
    }

    /** Runs one operation through a real job on the wait-fd path; waits for the eventfd to turn readable. */
    private static byte[] runWithFd(Pkcs11Engine engine, KeyOperation op) throws Exception {
        long fdsBefore = countFds();
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        AsyncJobPool pool = onOwner(() -> new AsyncJobPool(1, owner));
        EngineSession session = onOwner(() -> engine.newSession(ctx, owner));
        AsyncJob<byte[]> job = new AsyncJob<>(pool, ctx, j -> session.submit(j, op));
        AsyncStartResult started = onOwner(job::start);
        assertTrue(started == AsyncStartResult.PAUSE || started == AsyncStartResult.FINISH, started::toString);
        ChangedFds changed = onOwner(ctx::getChangedFds);
        assertEquals(1, changed.added().length, "one wait fd added");
        int fd = changed.added()[0];
        Await.until("the wait fd " + fd + " turned readable", Duration.ofSeconds(30), () -> drainOnOwner(fd));
        if (started == AsyncStartResult.PAUSE) {
            assertEquals(AsyncStartResult.FINISH, onOwner(job::resume), () -> String.valueOf(job.failure()));
        }
        assertEquals(AsyncJob.State.FINISHED, job.state());
        onOwner(() -> {
            session.close();
            ctx.close();
            return null;
        });
        // This ctx's own fd, not the JVM's count alone: another thread may open an anonymous fd meanwhile. The fd
        // number may be reused at once by another eventfd, so a count back where it was passes too.
        assertTrue(!isEventFd(fd) || countFds() == fdsBefore,
                () -> "the wait fd " + fd + " is closed with its ctx; anonymous fds now: " + anonFds());
        return job.result();
    }

    /** Drains {@code fd} on the owner thread, which owns the ctx; true when it was readable. */
    private static boolean drainOnOwner(int fd) {
        try {
            return onOwner(() -> EventFd.drain(fd));
        } catch (Exception e) {
            throw new AssertionError("draining wait fd " + fd + " on the owner thread", e);
        }
    }

    private static <T> T onOwner(Callable<T> task) throws Exception {
        return owner.submit(task).get(30, TimeUnit.SECONDS);
    }

    /** True when the token's user is logged in for this process: a new session on the module is in a user state. */
    private static boolean isLoggedIn() {
        TokenModule module = TokenModule.acquire(token.modulePath());
        try {
            org.xipki.pkcs11.wrapper.Session s = null;
            for (org.xipki.pkcs11.wrapper.Slot slot : wrapper(module).getSlotList(true)) {
                if (slot.getSlotID() == token.slotId()) {
                    s = slot.getToken().openSession(false);
                }
            }
            assertTrue(s != null, "slot " + token.slotId() + " not found");
            try {
                long state = s.getSessionInfo().getState();
                return state == org.xipki.pkcs11.wrapper.PKCS11Constants.CKS_RO_USER_FUNCTIONS;
            } finally {
                s.closeSession();
            }
        } catch (org.xipki.pkcs11.wrapper.PKCS11Exception e) {
            throw new AssertionError(e);
        } finally {
            module.release();
        }
    }

    /** The ipkcs11wrapper module under a real token's {@link TokenModule}. */
    static org.xipki.pkcs11.wrapper.PKCS11Module wrapper(TokenModule module) {
        return ((WrapperCryptoki) module.cryptoki()).pkcs11Module();
    }

    private static boolean verify(SignatureScheme scheme, PublicKey key, byte[] message, byte[] sig)
            throws Exception {
        Signature v = Signature.getInstance(scheme.jcaAlgorithm());
        if (scheme.isPss()) {
            v.setParameter(scheme.parameters());
        }
        v.initVerify(key);
        v.update(message);
        return v.verify(sig);
    }

    private static byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        new SecureRandom().nextBytes(b);
        return b;
    }

    /**
     * Eventfds (and other anonymous-inode fds) of this process: the wait fds under test. Files that the JVM or a
     * provider opens lazily on other threads (jars, /dev/urandom) are not counted, so they cannot move the count.
     */
    private static long countFds() throws IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().startsWith("anon_inode:");
                } catch (IOException e) {
                    return false; // the listing's own fd, closed meanwhile
                }
            }).count();
        }
    }

    private static String anonFds() {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.map(p -> {
                try {
                    return p.getFileName() + "->" + Files.readSymbolicLink(p);
                } catch (IOException e) {
                    return "";
                }
            }).filter(t -> t.contains("anon_inode")).toList() + ", threads " + Thread.getAllStackTraces().keySet()
                    .stream().map(Thread::getName).toList();
        } catch (IOException e) {
            return e.toString();
        }
    }

    private static int countThreads(String prefix) {
        int n = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().startsWith(prefix) && t.isAlive()) {
                n++;
            }
        }
        return n;
    }

    private static String stackText(Throwable t) {
        java.io.StringWriter w = new java.io.StringWriter();
        t.printStackTrace(new java.io.PrintWriter(w));
        return w.toString();
    }
}
