package io.asyncctx.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.asyncctx.AsyncJob;
import io.asyncctx.AsyncStartResult;
import io.asyncctx.AsyncStatus;
import io.asyncctx.testkit.Await;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.InvalidKeyException;
import java.security.KeyPair;
import java.security.ProviderException;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.interfaces.RSAPublicKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import javax.crypto.Cipher;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

@Timeout(60)
class SoftwareEngineTest {

    /** Every TLS 1.3-capable scheme; SHA-1 schemes are TLS 1.2 legacy and covered by the JDK fallback tests. */
    static final SignatureScheme[] SCHEMES = {
        SignatureScheme.RSA_PKCS1_SHA256, SignatureScheme.RSA_PKCS1_SHA384, SignatureScheme.RSA_PKCS1_SHA512,
        SignatureScheme.RSA_PSS_RSAE_SHA256, SignatureScheme.RSA_PSS_RSAE_SHA384, SignatureScheme.RSA_PSS_RSAE_SHA512,
        SignatureScheme.ECDSA_SECP256R1_SHA256, SignatureScheme.ECDSA_SECP384R1_SHA384,
        SignatureScheme.ECDSA_SECP521R1_SHA512, SignatureScheme.ED25519,
    };

    static Stream<Arguments> providersSchemesAndPaths() {
        List<Arguments> out = new ArrayList<>();
        for (CryptoProviders.Choice choice : new CryptoProviders.Choice[] {CryptoProviders.Choice.ACCP,
                CryptoProviders.Choice.JDK}) {
            for (SignatureScheme scheme : SCHEMES) {
                out.add(Arguments.of(choice, scheme, true));
                out.add(Arguments.of(choice, scheme, false));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} {1} callback={2}")
    @MethodSource("providersSchemesAndPaths")
    void shouldSignEverySchemeVerifiablyOnBothPathsWithBothProviders(CryptoProviders.Choice choice,
            SignatureScheme scheme, boolean callback) throws Exception {
        KeyPair keys = TestKeys.forScheme(scheme);
        byte[] message = new byte[146];
        new SecureRandom().nextBytes(message);
        try (SoftwareEngine engine = SoftwareEngine.builder().keyPair(keys).provider(choice).workers(2).build();
             EngineDriver driver = new EngineDriver(engine, callback)) {
            assertEquals(choice == CryptoProviders.Choice.ACCP, CryptoProviders.isAccp(engine.provider()));
            for (int i = 0; i < 3; i++) { // the same worker's cached Signature is reused: still valid each time
                byte[] sig = driver.run(KeyOperation.sign(scheme, message));
                assertTrue(verify(scheme, keys.getPublic(), message, sig), scheme + " signature #" + i);
            }
            assertEquals(3, engine.operationsCompleted());
            assertEquals(0, engine.operationsFailed());
            assertEquals(callback ? 3 : 0, driver.callbacks.get());
        }
    }

    @ParameterizedTest
    @EnumSource(value = CryptoProviders.Choice.class, names = {"ACCP", "JDK"})
    void shouldDecryptRawRsaThatRoundTrips(CryptoProviders.Choice choice) throws Exception {
        KeyPair keys = TestKeys.rsa();
        BigInteger n = ((RSAPublicKey) keys.getPublic()).getModulus();
        byte[] plain = new byte[256];
        new SecureRandom().nextBytes(plain);
        plain[0] = 0; // below the modulus
        assertTrue(new BigInteger(1, plain).compareTo(n) < 0);
        Cipher enc = Cipher.getInstance("RSA/ECB/NoPadding");
        enc.init(Cipher.ENCRYPT_MODE, keys.getPublic());
        byte[] encrypted = enc.doFinal(plain);
        for (boolean callback : new boolean[] {true, false}) {
            try (SoftwareEngine engine = SoftwareEngine.builder().keyPair(keys).provider(choice).workers(1).build();
                 EngineDriver driver = new EngineDriver(engine, callback)) {
                assertArrayEquals(plain, driver.run(KeyOperation.decrypt(encrypted)));
                assertArrayEquals(plain, driver.run(KeyOperation.decrypt(encrypted)), "with the cached Cipher");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = CryptoProviders.Choice.class, names = {"ACCP", "JDK"})
    void shouldFailTheJobNotTheEngineWhenTheKeyDoesNotFitTheOperation(CryptoProviders.Choice choice)
            throws Exception {
        KeyPair ec = TestKeys.forScheme(SignatureScheme.ECDSA_SECP256R1_SHA256);
        byte[] message = "hello".getBytes();
        try (SoftwareEngine engine = SoftwareEngine.builder().keyPair(ec).provider(choice).workers(1).build();
             EngineDriver driver = new EngineDriver(engine, true)) {
            Throwable rsa = driver.runExpectingFailure(KeyOperation.sign(SignatureScheme.RSA_PKCS1_SHA256, message));
            assertInstanceOf(InvalidKeyException.class, rsa);
            Throwable decrypt = driver.runExpectingFailure(KeyOperation.decrypt(new byte[32]));
            assertInstanceOf(InvalidKeyException.class, decrypt);
            Throwable ed = driver.runExpectingFailure(KeyOperation.sign(SignatureScheme.ED25519, message));
            assertInstanceOf(InvalidKeyException.class, ed);
            assertEquals(3, engine.operationsFailed());
            byte[] sig = driver.run(KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256, message));
            assertTrue(verify(SignatureScheme.ECDSA_SECP256R1_SHA256, ec.getPublic(), message, sig));
            assertEquals(1, engine.operationsCompleted());
        }
    }

    @ParameterizedTest
    @EnumSource(AbstractAsyncEngine.FdMode.class)
    void shouldMakeTheWaitFdReadableAndReleaseItInEitherFdMode(AbstractAsyncEngine.FdMode mode) throws Exception {
        KeyPair keys = TestKeys.forScheme(SignatureScheme.ECDSA_SECP256R1_SHA256);
        byte[] message = new byte[64];
        long fdsBefore = openFds();
        try (SoftwareEngine engine = SoftwareEngine.builder().keyPair(keys).fdMode(mode).workers(2).build()) {
            EngineDriver a = new EngineDriver(engine, false);
            EngineDriver b = new EngineDriver(engine, false);
            a.run(KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256, message));
            b.run(KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256, message));
            assertTrue(a.waitFd >= 0 && b.waitFd >= 0);
            if (mode == AbstractAsyncEngine.FdMode.SHARED_PER_LOOP) {
                assertEquals(a.waitFd, b.waitFd, "ctxs of one owner share one eventfd");
                assertEquals(1, engine.sharedFdCount());
            } else {
                assertTrue(a.waitFd != b.waitFd, "one eventfd per ctx");
            }
            assertEquals(fdsBefore + (mode == AbstractAsyncEngine.FdMode.SHARED_PER_LOOP ? 1 : 2), openFds());
            a.close();
            b.close();
            assertEquals(0, engine.sharedFdCount());
        }
        assertEquals(fdsBefore, openFds(), "eventfds leaked");
    }

    @Test
    void shouldAnswerEagainWhenTheQueueIsFullAndTakeTheRetryLater() throws Exception {
        BlockingSigner signer = new BlockingSigner(TestKeys.forScheme(SignatureScheme.ED25519));
        KeyOperation op = KeyOperation.sign(SignatureScheme.ED25519, new byte[10]);
        try (SoftwareEngine engine = new SoftwareEngine("t", AbstractAsyncEngine.FdMode.PER_CTX, signer, null, 1, 1);
             EngineDriver first = new EngineDriver(engine, true);
             EngineDriver second = new EngineDriver(engine, false);
             EngineDriver third = new EngineDriver(engine, true)) {
            AsyncJob<byte[]> j1 = first.start(op);
            signer.awaitEntered();                 // the only worker is busy
            AsyncJob<byte[]> j2 = second.start(op); // fills the queue (capacity 1)
            assertEquals(1, engine.queued());
            AsyncJob<byte[]> j3 = third.start(op);
            assertEquals(AsyncJob.State.PAUSED, j3.state());
            assertEquals(AsyncStatus.EAGAIN, third.ctx.getStatus());
            assertEquals(1, engine.operationsRejected());
            assertEquals(0, third.callbacks.get());

            signer.release();
            assertEquals(AsyncStartResult.FINISH, first.awaitAndResume(j1));
            assertEquals(AsyncStartResult.FINISH, second.awaitAndResume(j2));
            // The caller retries after EAGAIN by resuming: the operation is submitted again and now fits.
            AsyncStartResult retry = j3.resume();
            assertTrue(retry == AsyncStartResult.PAUSE || retry == AsyncStartResult.FINISH, retry::toString);
            if (retry == AsyncStartResult.PAUSE) {
                assertEquals(AsyncStatus.OK, third.ctx.getStatus());
                assertEquals(AsyncStartResult.FINISH, third.awaitAndResume(j3));
            }
            assertEquals(2, j3.runs());
            assertEquals(3, engine.operationsCompleted());
            assertEquals(3, signer.calls.get());
        }
    }

    @Test
    void shouldCloseOnceWhenManyThreadsCloseAtOnce() throws Exception {
        BlockingSigner signer = new BlockingSigner(TestKeys.forScheme(SignatureScheme.ED25519));
        KeyOperation op = KeyOperation.sign(SignatureScheme.ED25519, new byte[10]);
        SoftwareEngine engine = new SoftwareEngine("t", AbstractAsyncEngine.FdMode.PER_CTX, signer, null, 1, 4);
        try (EngineDriver busy = new EngineDriver(engine, true); EngineDriver queued = new EngineDriver(engine, true)) {
            AsyncJob<byte[]> running = busy.start(op);
            signer.awaitEntered();
            AsyncJob<byte[]> waiting = queued.start(op);
            CountDownLatch go = new CountDownLatch(1);
            List<Thread> closers = new ArrayList<>();
            AtomicReference<Throwable> thrown = new AtomicReference<>();
            for (int i = 0; i < 8; i++) {
                Thread t = new Thread(() -> {
                    try {
                        go.await();
                        engine.close();
                    } catch (Throwable e) {
                        thrown.set(e);
                    }
                }, "closer-" + i);
                t.start();
                closers.add(t);
            }
            go.countDown();
            // The winner interrupts the busy worker, whose signer gives up; the gate opens only after that, so the
            // worker cannot finish its operation normally.
            assertTrue(signer.interrupted.await(20, TimeUnit.SECONDS), "close() did not interrupt the busy worker");
            signer.release();
            for (Thread t : closers) {
                t.join(30_000);
                assertTrue(!t.isAlive(), t.getName() + " is stuck");
            }
            assertNull(thrown.get());
            assertTrue(engine.isClosed());
            // close() interrupts the busy worker (this signer gives up when interrupted) and fails the queued
            // operation: each of the two failed exactly once, by the one close() that won the CAS.
            assertEquals(2, engine.operationsFailed());
            assertEquals(AsyncStartResult.ERR, queued.awaitAndResume(waiting));
            assertTrue(waiting.failure().getMessage().contains("closed"), waiting.failure().getMessage());
            assertEquals(AsyncStartResult.ERR, busy.awaitAndResume(running));
        }
    }

    @Test
    void shouldSkipTheQueuedOperationOfAnAbandonedJob() throws Exception {
        BlockingSigner signer = new BlockingSigner(TestKeys.forScheme(SignatureScheme.ED25519));
        KeyOperation op = KeyOperation.sign(SignatureScheme.ED25519, new byte[10]);
        try (SoftwareEngine engine = new SoftwareEngine("t", AbstractAsyncEngine.FdMode.PER_CTX, signer, null, 1, 4);
             EngineDriver first = new EngineDriver(engine, true);
             EngineDriver cancelled = new EngineDriver(engine, true);
             EngineDriver abandonedOnly = new EngineDriver(engine, true)) {
            AsyncJob<byte[]> j1 = first.start(op);
            signer.awaitEntered();
            AsyncJob<byte[]> j2 = cancelled.start(op);
            AsyncJob<byte[]> j3 = abandonedOnly.start(op);
            assertEquals(2, engine.queued());

            assertTrue(j2.abandon());
            cancelled.session.cancel(j2); // lazy: stays queued (no O(capacity) removal), the worker skips it
            assertEquals(2, engine.queued());
            assertEquals(0, engine.operationsCancelled());
            assertTrue(j3.abandon());     // not told to the engine: the worker sees isCancelled() and skips it

            signer.release();
            assertEquals(AsyncStartResult.FINISH, first.awaitAndResume(j1));
            Await.until("the worker skipped both abandoned operations",
                    Duration.ofNanos(EngineDriver.WAIT_NANOS), () -> engine.operationsCancelled() >= 2);
            assertEquals(2, engine.operationsCancelled());
            assertEquals(0, engine.queued());
            assertEquals(1, signer.calls.get(), "only the live job was signed");
            assertEquals(0, cancelled.callbacks.get());
            assertEquals(0, abandonedOnly.callbacks.get());
            assertEquals(AsyncJob.State.ABANDONED, j2.state());
            assertEquals(AsyncJob.State.ABANDONED, j3.state());
        }
    }

    @Test
    void shouldFailQueuedOperationsAndStopItsThreadsOnClose() throws Exception {
        BlockingSigner signer = new BlockingSigner(TestKeys.forScheme(SignatureScheme.ED25519));
        KeyOperation op = KeyOperation.sign(SignatureScheme.ED25519, new byte[10]);
        Set<Thread> before = liveWorkerThreads();
        SoftwareEngine engine = new SoftwareEngine("t", AbstractAsyncEngine.FdMode.PER_CTX, signer, null, 2, 8);
        try (EngineDriver d1 = new EngineDriver(engine, true);
             EngineDriver d2 = new EngineDriver(engine, true);
             EngineDriver d3 = new EngineDriver(engine, false)) {
            Set<Thread> mine = liveWorkerThreads();
            mine.removeAll(before);
            assertEquals(2, mine.size());
            AsyncJob<byte[]> j1 = d1.start(op);
            AsyncJob<byte[]> j2 = d2.start(op);
            signer.awaitEntered();
            signer.awaitEntered(); // both workers blocked inside the signer
            AsyncJob<byte[]> j3 = d3.start(op);
            assertEquals(1, engine.queued());

            engine.close(); // interrupts the blocked signers, joins the workers, fails the queued op

            assertTrue(mine.stream().noneMatch(Thread::isAlive), "the engine's workers must have ended");
            assertEquals(before, liveWorkerThreads(), "no asyncctx-software-* thread may remain");
            assertEquals(AsyncStartResult.ERR, d1.awaitAndResume(j1));
            assertEquals(AsyncStartResult.ERR, d2.awaitAndResume(j2));
            assertEquals(AsyncStartResult.ERR, d3.awaitAndResume(j3));
            assertTrue(j3.failure().getMessage().contains("closed"), j3.failure()::toString);
            assertEquals(3, engine.operationsFailed());
            assertEquals(0, engine.queued());

            AsyncJob<byte[]> late = d1.start(op);
            assertEquals(AsyncJob.State.FINISHED, late.state(), "submit after close fails at once");
            assertNotNull(late.failure());
            assertThrows(RejectedExecutionException.class, () -> engine.taskExecutor().execute(() -> { }));
            engine.close(); // idempotent
        }
    }

    @Test
    void shouldRunDelegatedTasksOnTheBoundedWorkers() throws Exception {
        BlockingSigner signer = new BlockingSigner(TestKeys.forScheme(SignatureScheme.ED25519));
        try (SoftwareEngine engine = new SoftwareEngine("t", AbstractAsyncEngine.FdMode.PER_CTX, signer, null, 1, 1);
             EngineDriver d = new EngineDriver(engine, true)) {
            AtomicReference<String> ranOn = new AtomicReference<>();
            CountDownLatch ran = new CountDownLatch(1);
            engine.taskExecutor().execute(() -> {
                ranOn.set(Thread.currentThread().getName());
                ran.countDown();
            });
            assertTrue(ran.await(20, TimeUnit.SECONDS));
            assertTrue(ranOn.get().startsWith("asyncctx-software-"), ranOn::get);

            AsyncJob<byte[]> j = d.start(KeyOperation.sign(SignatureScheme.ED25519, new byte[1]));
            signer.awaitEntered();
            engine.taskExecutor().execute(() -> { }); // fills the queue
            assertThrows(RejectedExecutionException.class, () -> engine.taskExecutor().execute(() -> { }));
            signer.release();
            assertEquals(AsyncStartResult.FINISH, d.awaitAndResume(j));
        }
    }

    @Test
    void shouldUseDaemonWorkersWithTheConfiguredCount() {
        Set<Thread> before = liveWorkerThreads();
        try (SoftwareEngine engine = SoftwareEngine.builder().keyPair(TestKeys.rsa()).workers(3).queueCapacity(7)
                .name("mine").build()) {
            assertEquals("mine", engine.name());
            assertEquals(3, engine.workers());
            assertEquals(7, engine.queueCapacity());
            assertEquals(AbstractAsyncEngine.FdMode.SHARED_PER_LOOP, engine.fdMode());
            assertSame(TestKeys.rsa().getPublic(), engine.publicKey());
            Set<Thread> mine = liveWorkerThreads();
            mine.removeAll(before);
            assertEquals(3, mine.size());
            assertTrue(mine.stream().allMatch(Thread::isDaemon));
        }
        assertEquals(before, liveWorkerThreads());
    }

    @Test
    void shouldChooseTheProviderAsAsked() {
        KeyPair keys = TestKeys.forScheme(SignatureScheme.ED25519);
        try (SoftwareEngine accp = SoftwareEngine.builder().keyPair(keys).workers(1)
                .provider(CryptoProviders.Choice.ACCP).build();
             SoftwareEngine jdk = SoftwareEngine.builder().keyPair(keys).workers(1)
                .provider(CryptoProviders.Choice.JDK).build();
             SoftwareEngine auto = SoftwareEngine.builder().keyPair(keys).workers(1).build()) {
            assertEquals("AmazonCorrettoCryptoProvider", accp.provider().getName());
            assertNull(jdk.provider());
            assertSame(accp.provider(), auto.provider(), "AUTO picks ACCP when it loads");
        }
    }

    @Test
    void shouldRefuseToBuildWithoutAKeyOrWithAMismatchedPair() {
        IllegalStateException none = assertThrows(IllegalStateException.class,
                () -> SoftwareEngine.builder().build());
        assertTrue(none.getMessage().contains("keyPair"), none::getMessage);
        KeyPair other = TestKeys.forScheme(SignatureScheme.ECDSA_SECP384R1_SHA384);
        KeyPair mine = TestKeys.forScheme(SignatureScheme.ECDSA_SECP256R1_SHA256);
        IllegalStateException mismatch = assertThrows(IllegalStateException.class,
                () -> SoftwareEngine.builder().key(mine.getPrivate(), other.getPublic()).build());
        assertTrue(mismatch.getMessage().contains("does not match"), mismatch::getMessage);
        assertThrows(IllegalStateException.class, () -> SoftwareEngine.builder()
                .key(mine.getPrivate(), TestKeys.rsa().getPublic()).build());
        assertThrows(IllegalArgumentException.class, () -> SoftwareEngine.builder().workers(0));
        assertThrows(IllegalArgumentException.class, () -> SoftwareEngine.builder().queueCapacity(0));
    }

    @Test
    void shouldBuildFromPemFilesWithThePublicKeyOfTheCertificate() throws Exception {
        Path dir = Files.createTempDirectory("asyncctx-pem");
        try {
            Path key = dir.resolve("key.pem");
            Path cert = dir.resolve("cert.pem");
            OpenSsl.assumeAvailable();
            OpenSsl.run(dir, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key.toString());
            OpenSsl.run(dir, "req", "-x509", "-key", key.toString(), "-subj", "/CN=engine", "-days", "1",
                    "-out", cert.toString());
            PublicKey certKey = PemKeys.readCertificates(cert).get(0).getPublicKey();
            try (SoftwareEngine engine = SoftwareEngine.builder().pem(key, cert).workers(1).build();
                 EngineDriver driver = new EngineDriver(engine, true)) {
                assertEquals(certKey, engine.publicKey());
                byte[] msg = new byte[100];
                byte[] sig = driver.run(KeyOperation.sign(SignatureScheme.ECDSA_SECP256R1_SHA256, msg));
                assertTrue(verify(SignatureScheme.ECDSA_SECP256R1_SHA256, certKey, msg, sig));
            }
        } finally {
            OpenSsl.deleteTree(dir);
        }
    }

    static boolean verify(SignatureScheme scheme, PublicKey key, byte[] message, byte[] sig)
            throws GeneralSecurityException {
        Signature v = Signature.getInstance(scheme.jcaAlgorithm());
        if (scheme.isPss()) {
            v.setParameter(scheme.parameters());
        }
        v.initVerify(key);
        v.update(message);
        return v.verify(sig);
    }

    /** The live threads named asyncctx-software-*, of any engine in this JVM. */
    static Set<Thread> liveWorkerThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.isAlive() && t.getName().startsWith("asyncctx-software-"))
                .collect(Collectors.toCollection(HashSet::new));
    }

    static long openFds() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    /** Signs with a real key, but the calls block until {@link #release()}; each call reports it has entered. */
    static final class BlockingSigner implements KeySigner {
        final JcaKeySigner delegate;
        final AtomicInteger calls = new AtomicInteger();
        final java.util.concurrent.Semaphore entered = new java.util.concurrent.Semaphore(0);
        final CountDownLatch gate = new CountDownLatch(1);
        /** Counted down when a blocked call was interrupted (and gave up). */
        final CountDownLatch interrupted = new CountDownLatch(1);

        BlockingSigner(KeyPair keys) {
            delegate = new JcaKeySigner(keys.getPrivate(), keys.getPublic(), null);
        }

        void awaitEntered() throws InterruptedException {
            if (!entered.tryAcquire(20, TimeUnit.SECONDS)) {
                fail("no worker entered the signer in time");
            }
        }

        void release() {
            gate.countDown();
        }

        @Override
        public PublicKey publicKey() {
            return delegate.publicKey();
        }

        @Override
        public byte[] perform(KeyOperation operation) throws GeneralSecurityException {
            calls.incrementAndGet();
            entered.release();
            try {
                if (!gate.await(30, TimeUnit.SECONDS)) {
                    throw new ProviderException("test gate never opened");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                interrupted.countDown();
                throw new ProviderException("interrupted while blocked", e);
            }
            return delegate.perform(operation);
        }
    }
}
