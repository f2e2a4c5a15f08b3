package io.asyncctx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** {@link AsyncStatus} mirrors OpenSSL's {@code ASYNC_STATUS_*} numbers. */
class AsyncStatusTest {

    @Test
    void shouldUseOpenSslStatusCodes() {
        assertEquals(0, AsyncStatus.UNSUPPORTED.code());
        assertEquals(1, AsyncStatus.ERR.code());
        assertEquals(2, AsyncStatus.OK.code());
        assertEquals(3, AsyncStatus.EAGAIN.code());
        assertEquals(4, AsyncStatus.values().length);
    }

    @Test
    void shouldMapEveryCodeBackToItsStatus() {
        for (AsyncStatus s : AsyncStatus.values()) {
            assertSame(s, AsyncStatus.fromCode(s.code()));
        }
    }

    @Test
    void shouldRejectCodesOutsideZeroToThree() {
        for (int code : new int[] {4, -1, Integer.MAX_VALUE, Integer.MIN_VALUE}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AsyncStatus.fromCode(code));
            assertTrue(e.getMessage().contains(String.valueOf(code)), e.getMessage());
            assertTrue(e.getMessage().contains("0..3"), e.getMessage());
        }
    }
}
