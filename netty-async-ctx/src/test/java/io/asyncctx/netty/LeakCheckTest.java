package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The leak check itself: a buffer dropped unreleased is reported by the very next check, with no sleeping. */
@Timeout(60)
class LeakCheckTest {

    private static void leak(String hint) {
        ByteBuf b = PooledByteBufAllocator.DEFAULT.directBuffer(16);
        b.writeLong(42);
        b.touch(hint);
    }

    @Test
    void shouldReportALeakAtTheNextCheckEveryTime() throws Exception {
        LeakCheck.assertNoLeaks("before"); // whatever an earlier class left is not this test's
        for (int i = 0; i < 5; i++) {
            String hint = "leaked-on-purpose-" + i;
            leak(hint);
            AssertionError e = assertThrows(AssertionError.class, () -> LeakCheck.assertNoLeaks("round"));
            assertTrue(e.getMessage().contains(hint), e.getMessage());
        }
        LeakCheck.assertNoLeaks("after"); // and nothing is left over once reported
    }
}
