package io.asyncctx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Scripted scenarios for {@link AsyncWaitCtx}, one per function, in the manner of OpenSSL's {@code test/asynctest.c}:
 * fds are set and cleared inside the runs of a real {@link AsyncJob} and the change lists are read after every pause.
 * The ctx never touches fds, so fd numbers here are plain magic numbers, as in asynctest.c.
 */
class AsyncWaitCtxTest {

    private static final int FD_A = 101;
    private static final int FD_B = 102;
    private static final int FD_C = 103;

    private final Object keyA = new Object();
    private final Object keyB = new Object();
    private final Object keyC = new Object();
    private final PumpedExecutor owner = new PumpedExecutor();
    private final AsyncJobPool pool = new AsyncJobPool(4, owner);

    /** What a cleanup routine was called with. */
    private record CleanupCall(AsyncWaitCtx ctx, Object key, int fd, Object customData) {
    }

    /**
     * An operation that runs one scripted step per run: every step but the last sets EAGAIN so that the test's resume
     * re-runs the operation (the next step); the last step completes the job with "done".
     */
    private static AsyncOperation<String> script(List<Consumer<AsyncWaitCtx>> steps) {
        return job -> {
            int step = job.runs() - 1;
            steps.get(step).accept(job.waitCtx());
            if (step == steps.size() - 1) {
                job.complete("done");
            } else {
                job.waitCtx().setStatus(AsyncStatus.EAGAIN);
            }
        };
    }

    private static ChangedFds changes(int[] added, int[] deleted) {
        return new ChangedFds(added, deleted);
    }

    private static int[] fds(int... fds) {
        return fds;
    }

    private static int[] allFds(AsyncWaitCtx ctx) {
        int[] all = new int[ctx.getAllFds(null)];
        assertEquals(all.length, ctx.getAllFds(all));
        return all;
    }

    @Test
    void shouldStartEmptyWithDefaultStatusAndNoCallback() {
        try (AsyncWaitCtx ctx = new AsyncWaitCtx()) {
            assertEquals(AsyncStatus.UNSUPPORTED, ctx.getStatus());
            assertNull(ctx.getCallback());
            assertNull(ctx.getCallbackArg());
            assertNull(ctx.getCallbackBinding());
            assertEquals(0, ctx.getAllFds(null));
            assertTrue(ctx.getChangedFds().isEmpty());
            assertEquals(0, ctx.numAddedFds());
            assertEquals(0, ctx.numDeletedFds());
            assertNull(ctx.getFd(keyA));
            assertNull(ctx.currentJob());
            assertFalse(ctx.isClosed());
        }
    }

    @Test
    void shouldReturnSetFdAndCustomDataUnderItsKey() {
        Object dataA = "data-a";
        try (AsyncWaitCtx ctx = new AsyncWaitCtx()) {
            ctx.setWaitFd(keyA, FD_A, dataA, null);
            ctx.setWaitFd(keyB, FD_B, null, null);

            WaitFd a = ctx.getFd(keyA);
            assertNotNull(a);
            assertEquals(FD_A, a.fd());
            assertSame(dataA, a.customData());
            assertEquals(new WaitFd(FD_B, null), ctx.getFd(keyB));
            assertNull(ctx.getFd(keyC));
        }
    }

    @Test
    void shouldCountThenCopyAllLiveFdsInTheOrderTheyWereSet() {
        try (AsyncWaitCtx ctx = new AsyncWaitCtx()) {
            ctx.setWaitFd(keyB, FD_B, null, null);
            ctx.setWaitFd(keyA, FD_A, null, null);
            ctx.setWaitFd(keyC, FD_C, null, null);
            assertEquals(3, ctx.getAllFds(null));
            int[] big = {-1, -1, -1, -1, -1};
            assertEquals(3, ctx.getAllFds(big));
            assertArrayEquals(new int[] {FD_B, FD_A, FD_C, -1, -1}, big, "only the first 3 slots are written");

            assertTrue(ctx.clearFd(keyA));
            assertArrayEquals(fds(FD_B, FD_C), allFds(ctx), "a cleared fd is invisible to getAllFds at once");
            assertNull(ctx.getFd(keyA), "a cleared fd is invisible to getFd at once");
        }
    }

    /** asynctest.c's waitfd job: nothing, one fd added, all removed, one added and removed at once. */
    @Test
    void shouldReportChangeListsAcrossPauseResumeCyclesLikeAsynctest() {
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        List<Consumer<AsyncWaitCtx>> steps = List.of(
                c -> { },
                c -> c.setWaitFd(keyA, FD_A, null, null),
                c -> assertTrue(c.clearFd(keyA)),
                c -> {
                    c.setWaitFd(keyA, FD_A, null, null);
                    assertTrue(c.clearFd(keyA));
                });
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, script(steps));

        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertEquals(0, ctx.getAllFds(null));
        assertTrue(ctx.getChangedFds().isEmpty(), "first case: no fd added or removed");

        assertEquals(AsyncStartResult.PAUSE, job.resume());
        assertEquals(1, ctx.getAllFds(null));
        assertArrayEquals(fds(FD_A), allFds(ctx));
        assertEquals(changes(fds(FD_A), fds()), ctx.getChangedFds(), "second case: one fd added");

        assertEquals(AsyncStartResult.PAUSE, job.resume());
        assertEquals(0, ctx.getAllFds(null));
        assertEquals(changes(fds(), fds(FD_A)), ctx.getChangedFds(), "third case: the older fd is listed deleted");

        assertEquals(AsyncStartResult.FINISH, job.resume());
        assertEquals("done", job.result());
        assertEquals(0, ctx.getAllFds(null));
        assertTrue(ctx.getChangedFds().isEmpty(), "last case: added and cleared in one window shows in neither list");
        assertEquals(4, job.runs());
        ctx.close();
    }

    @Test
    void shouldClearChangeSetOnResumeAndDropDeletedEntries() {
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        List<Consumer<AsyncWaitCtx>> steps = List.of(
                c -> {
                    c.setWaitFd(keyA, FD_A, null, null);
                    c.setWaitFd(keyB, FD_B, null, null);
                },
                c -> {
                    assertTrue(c.clearFd(keyA));
                    c.setWaitFd(keyC, FD_C, null, null);
                },
                c -> { },
                c -> { });
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, script(steps));

        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertEquals(changes(fds(FD_A, FD_B), fds()), ctx.getChangedFds());
        assertEquals(2, ctx.numAddedFds());

        assertEquals(AsyncStartResult.PAUSE, job.resume());
        assertEquals(changes(fds(FD_C), fds(FD_A)), ctx.getChangedFds(),
                "only changes since the resume: B is an old live fd, A deleted, C added");
        assertEquals(1, ctx.numAddedFds());
        assertEquals(1, ctx.numDeletedFds());
        assertArrayEquals(fds(FD_B, FD_C), allFds(ctx));

        assertEquals(AsyncStartResult.PAUSE, job.resume());
        assertTrue(ctx.getChangedFds().isEmpty(), "resume cleared the change set and dropped deleted A");
        assertEquals(0, ctx.numDeletedFds());
        assertArrayEquals(fds(FD_B, FD_C), allFds(ctx));
        assertTrue(ctx.clearFd(keyB), "clear of an old fd between resumes (owner thread)");
        assertEquals(changes(fds(), fds(FD_B)), ctx.getChangedFds());

        assertEquals(AsyncStartResult.FINISH, job.resume());
        assertTrue(ctx.getChangedFds().isEmpty());
        assertArrayEquals(fds(FD_C), allFds(ctx));
        ctx.close();
    }

    @Test
    void shouldListFdAsDeletedUntilNextResume() {
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, j -> j.waitCtx().setWaitFd(keyA, FD_A, null, null));
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertEquals(AsyncStartResult.PAUSE, job.resume(), "spurious resume: A is now an older fd");
        assertTrue(ctx.getChangedFds().isEmpty());

        assertTrue(ctx.clearFd(keyA));
        for (int read = 0; read < 3; read++) {
            assertEquals(changes(fds(), fds(FD_A)), ctx.getChangedFds(), "reading does not consume the change set");
        }
        assertNull(ctx.getFd(keyA));
        assertFalse(ctx.clearFd(keyA), "a deleted fd is not live: a second clear finds nothing");
        assertEquals(1, ctx.numDeletedFds());

        assertEquals(AsyncStartResult.PAUSE, job.resume());
        assertTrue(ctx.getChangedFds().isEmpty(), "the deleted entry is gone after the resume");
        assertTrue(job.complete("x"));
        assertEquals(AsyncStartResult.FINISH, job.resume());
        ctx.close();
    }

    @Test
    void shouldListNeitherAddedNorDeletedWhenFdIsAddedAndClearedInOneWindow() {
        try (AsyncWaitCtx ctx = new AsyncWaitCtx()) {
            ctx.setWaitFd(keyA, FD_A, null, null);
            ctx.setWaitFd(keyB, FD_B, null, null);
            assertTrue(ctx.clearFd(keyA));
            assertEquals(changes(fds(FD_B), fds()), ctx.getChangedFds());
            assertEquals(1, ctx.numAddedFds());
            assertEquals(0, ctx.numDeletedFds());
            assertArrayEquals(fds(FD_B), allFds(ctx));
        }
    }

    @Test
    void shouldListOldFdDeletedAndNewFdAddedWhenKeyIsReusedInOneWindow() {
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, j -> j.waitCtx().setWaitFd(keyA, FD_A, "old", null));
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertEquals(AsyncStartResult.PAUSE, job.resume());

        assertTrue(ctx.clearFd(keyA));
        ctx.setWaitFd(keyA, FD_B, "new", null);
        assertEquals(changes(fds(FD_B), fds(FD_A)), ctx.getChangedFds());
        assertEquals(new WaitFd(FD_B, "new"), ctx.getFd(keyA), "getFd skips the deleted entry of the same key");

        assertTrue(ctx.clearFd(keyA), "clears the live (new) fd, not the deleted one");
        assertEquals(changes(fds(), fds(FD_A)), ctx.getChangedFds(), "the new fd was added in this window: gone");
        assertTrue(job.abandon());
        ctx.close();
    }

    @Test
    void shouldCompareKeysByIdentity() {
        String key1 = new String("engine");
        String key2 = new String("engine");
        assertEquals(key1, key2);
        try (AsyncWaitCtx ctx = new AsyncWaitCtx()) {
            ctx.setWaitFd(key1, FD_A, null, null);
            ctx.setWaitFd(key2, FD_B, null, null); // a different key: no "already has a live fd" error

            assertEquals(FD_A, ctx.getFd(key1).fd());
            assertEquals(FD_B, ctx.getFd(key2).fd());
            assertNull(ctx.getFd(new String("engine")));
            assertFalse(ctx.clearFd(new String("engine")));
            assertTrue(ctx.clearFd(key2));
            assertEquals(FD_A, ctx.getFd(key1).fd(), "clearing key2 left the equal key1 alone");
            assertNull(ctx.getFd(key2));
        }
    }

    @Test
    void shouldCallCleanupOnCloseOncePerFdNotClearedAndNeverForClearedFds() {
        List<CleanupCall> calls = new ArrayList<>();
        WaitFdCleanup cleanup = (c, key, fd, data) -> calls.add(new CleanupCall(c, key, fd, data));
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, j -> {
            j.waitCtx().setWaitFd(keyA, FD_A, "a", cleanup);
            j.waitCtx().setWaitFd(keyB, FD_B, "b", cleanup);
        });
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertEquals(AsyncStartResult.PAUSE, job.resume());
        assertTrue(ctx.clearFd(keyB)); // old fd: stays in the table as deleted until the next resume
        ctx.setWaitFd(keyC, FD_C, "c", cleanup);
        ctx.setWaitFd(new Object(), 104, null, cleanup);
        assertTrue(ctx.clearFd(keyC)); // new fd: removed outright
        assertTrue(job.complete("r"));
        assertEquals(AsyncStartResult.FINISH, job.resume());
        assertTrue(calls.isEmpty(), "clearFd and resume never call cleanup");

        ctx.close();
        assertEquals(2, calls.size(), "A and the fd 104, not B or C: " + calls);
        assertEquals(new CleanupCall(ctx, keyA, FD_A, "a"), calls.get(0));
        assertSame(keyA, calls.get(0).key());
        assertEquals(104, calls.get(1).fd());
        assertTrue(ctx.isClosed());
        assertEquals(0, ctx.getAllFds(null));
        assertNull(ctx.getFd(keyA));
        assertTrue(ctx.getChangedFds().isEmpty());

        ctx.close();
        assertEquals(2, calls.size(), "close is idempotent: no second round of cleanups");
    }

    @Test
    void shouldNotCallCleanupForFdClearedWhileStillListedDeleted() {
        int[] calls = new int[1];
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        AsyncJob<String> job = new AsyncJob<>(pool, ctx, j -> j.waitCtx().setWaitFd(keyA, FD_A, null,
                (c, k, fd, d) -> calls[0]++));
        assertEquals(AsyncStartResult.PAUSE, job.start());
        assertEquals(AsyncStartResult.PAUSE, job.resume());
        assertTrue(ctx.clearFd(keyA));
        assertTrue(job.abandon());
        ctx.close();
        assertEquals(0, calls[0]);
    }

    @Test
    void shouldRunEveryCleanupWhenSomeThrowAndRethrowTheFirstWithOthersSuppressed() {
        List<Integer> cleaned = new ArrayList<>();
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        ctx.setWaitFd(keyA, FD_A, null, (c, k, fd, d) -> {
            cleaned.add(fd);
            throw new IllegalStateException("first");
        });
        ctx.setWaitFd(keyB, FD_B, null, (c, k, fd, d) -> cleaned.add(fd));
        ctx.setWaitFd(keyC, FD_C, null, (c, k, fd, d) -> {
            cleaned.add(fd);
            throw new UnsupportedOperationException("second");
        });

        IllegalStateException e = assertThrows(IllegalStateException.class, ctx::close);
        assertEquals("first", e.getMessage());
        assertEquals(1, e.getSuppressed().length);
        assertEquals("second", e.getSuppressed()[0].getMessage());
        assertEquals(List.of(FD_A, FD_B, FD_C), cleaned);
        assertTrue(ctx.isClosed());
        assertEquals(0, ctx.getAllFds(null));

        ctx.close(); // idempotent even after a failed round
        assertEquals(3, cleaned.size());
    }

    @Test
    void shouldForgetFdsEvenWhenCleanupThrowsAnError() {
        int[] calls = new int[1];
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        ctx.setWaitFd(keyA, FD_A, null, (c, k, fd, d) -> {
            calls[0]++;
            throw new AssertionError("boom");
        });
        assertThrows(AssertionError.class, ctx::close);
        assertTrue(ctx.isClosed());
        assertEquals(0, ctx.getAllFds(null));
        ctx.close();
        assertEquals(1, calls[0]);
    }

    @Test
    void shouldSetReadAndClearCallbackWithItsArgument() {
        AsyncCallback cb = arg -> 1;
        Object arg = new Object();
        try (AsyncWaitCtx ctx = new AsyncWaitCtx()) {
            ctx.setCallback(cb, arg);
            assertSame(cb, ctx.getCallback());
            assertSame(arg, ctx.getCallbackArg());
            AsyncWaitCtx.CallbackBinding binding = ctx.getCallbackBinding();
            assertSame(cb, binding.callback());
            assertSame(arg, binding.arg());
            assertEquals(1, binding.call());

            ctx.setCallback(cb, null);
            assertSame(cb, ctx.getCallback());
            assertNull(ctx.getCallbackArg());

            ctx.setCallback(null, arg);
            assertNull(ctx.getCallback());
            assertNull(ctx.getCallbackArg(), "a null callback clears the argument too");
            assertNull(ctx.getCallbackBinding());
        }
    }

    @Test
    void shouldPassTheArgumentToTheCallback() {
        List<Object> seen = new ArrayList<>();
        Object arg = "conn-7";
        try (AsyncWaitCtx ctx = new AsyncWaitCtx()) {
            ctx.setCallback(a -> {
                seen.add(a);
                return 0;
            }, arg);
            assertEquals(0, ctx.getCallbackBinding().call());
            assertEquals(List.of(arg), seen);
        }
    }

    @Test
    void shouldKeepStatusUntilChangedAndResetItOnClose() {
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        for (AsyncStatus s : AsyncStatus.values()) {
            ctx.setStatus(s);
            assertEquals(s, ctx.getStatus());
        }
        ctx.setCallback(a -> 1, "x");
        ctx.close();
        assertEquals(AsyncStatus.UNSUPPORTED, ctx.getStatus());
        assertNull(ctx.getCallback());
        assertNull(ctx.getCallbackArg());
    }

    @Test
    void shouldRejectNullKey() {
        try (AsyncWaitCtx ctx = new AsyncWaitCtx()) {
            NullPointerException e = assertThrows(NullPointerException.class, () -> ctx.setWaitFd(null, 1, null, null));
            assertEquals("key", e.getMessage());
            assertThrows(NullPointerException.class, () -> ctx.getFd(null));
            assertThrows(NullPointerException.class, () -> ctx.clearFd(null));
            assertEquals(0, ctx.getAllFds(null), "nothing was added by the failed call");
        }
    }

    @Test
    void shouldRejectNegativeFd() {
        try (AsyncWaitCtx ctx = new AsyncWaitCtx()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ctx.setWaitFd(keyA, -1, null, null));
            assertTrue(e.getMessage().contains("-1"), e.getMessage());
            assertNull(ctx.getFd(keyA));
            ctx.setWaitFd(keyA, 0, null, null); // fd 0 is a valid descriptor
            assertEquals(0, ctx.getFd(keyA).fd());
        }
    }

    @Test
    void shouldRejectSecondLiveFdUnderSameKeyUntilCleared() {
        try (AsyncWaitCtx ctx = new AsyncWaitCtx()) {
            ctx.setWaitFd(keyA, FD_A, null, null);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> ctx.setWaitFd(keyA, FD_B, null, null));
            assertTrue(e.getMessage().contains("clearFd"), e.getMessage());
            assertEquals(FD_A, ctx.getFd(keyA).fd(), "the first fd stays");
            assertEquals(1, ctx.getAllFds(null));

            assertTrue(ctx.clearFd(keyA));
            ctx.setWaitFd(keyA, FD_B, null, null);
            assertEquals(FD_B, ctx.getFd(keyA).fd());
        }
    }

    @Test
    void shouldRejectArrayTooSmallForGetAllFds() {
        try (AsyncWaitCtx ctx = new AsyncWaitCtx()) {
            ctx.setWaitFd(keyA, FD_A, null, null);
            ctx.setWaitFd(keyB, FD_B, null, null);
            int[] small = {-1};
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ctx.getAllFds(small));
            assertTrue(e.getMessage().contains("getAllFds(null)"), e.getMessage());
            assertEquals(-1, small[0], "nothing written into a too small array");
            int[] exact = new int[2];
            assertEquals(2, ctx.getAllFds(exact), "an array of exactly the live count is enough");
            assertArrayEquals(fds(FD_A, FD_B), exact);
            ctx.clearFd(keyA);
            ctx.clearFd(keyB);
            assertEquals(0, ctx.getAllFds(new int[0]), "an empty array is enough for no fds");
        }
    }

    @Test
    void shouldRejectMutationAfterClose() {
        AsyncWaitCtx ctx = new AsyncWaitCtx();
        ctx.close();
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> ctx.setWaitFd(keyA, FD_A, null, null));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> ctx.clearFd(keyA));
        assertThrows(IllegalStateException.class, () -> ctx.setCallback(a -> 1, "x"));
        assertThrows(IllegalStateException.class, () -> ctx.setStatus(AsyncStatus.OK));
        assertNull(ctx.getCallback());
        assertEquals(AsyncStatus.UNSUPPORTED, ctx.getStatus());
        assertEquals(0, ctx.getAllFds(null));
        assertNull(ctx.getFd(keyA));
    }

    @Test
    void shouldRejectNullStatus() {
        try (AsyncWaitCtx ctx = new AsyncWaitCtx()) {
            ctx.setStatus(AsyncStatus.OK);
            NullPointerException e = assertThrows(NullPointerException.class, () -> ctx.setStatus(null));
            assertEquals("status", e.getMessage());
            assertEquals(AsyncStatus.OK, ctx.getStatus(), "a rejected null leaves the status as it was");
        }
    }

    @Test
    void shouldRejectNullCallbackInBinding() {
        assertThrows(NullPointerException.class, () -> new AsyncWaitCtx.CallbackBinding(null, "x"));
    }

    @Test
    void shouldRejectNullArraysInChangedFds() {
        assertThrows(NullPointerException.class, () -> new ChangedFds(null, new int[0]));
        assertThrows(NullPointerException.class, () -> new ChangedFds(new int[0], null));
        assertEquals(new ChangedFds(fds(1, 2), fds(3)), new ChangedFds(fds(1, 2), fds(3)), "value equality of arrays");
        assertEquals(new ChangedFds(fds(1, 2), fds(3)).hashCode(), new ChangedFds(fds(1, 2), fds(3)).hashCode());
    }
}
