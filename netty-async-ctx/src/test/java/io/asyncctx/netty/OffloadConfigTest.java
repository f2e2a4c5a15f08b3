package io.asyncctx.netty;

import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OffloadConfigTest {

    @Test
    void shouldHaveDocumentedDefaults() {
        OffloadConfig c = OffloadConfig.defaults();
        assertEquals(OffloadConfig.Notify.AUTO, c.notifyMode());
        assertEquals(1024, c.maxJobsPerLoop());
        assertEquals(Duration.ofSeconds(10), c.operationTimeout());
        assertEquals(Duration.ofMillis(1), c.eagainInitialBackoff());
        assertEquals(Duration.ofMillis(64), c.eagainMaxBackoff());
        assertEquals(8, c.eagainMaxRetries());
        assertEquals(0, c.handshakeStepsPerLoopTurn(), "unbounded unless set");
        assertEquals(c.toString(), c.toBuilder().build().toString());
    }

    @Test
    void shouldRejectBadValuesWithMessagesNamingTheSetting() {
        var b = OffloadConfig.builder();
        assertTrue(assertThrows(IllegalArgumentException.class, () -> b.maxJobsPerLoop(0)).getMessage()
                .contains("maxJobsPerLoop"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> b.operationTimeout(Duration.ofMillis(-1)))
                .getMessage().contains("operationTimeout"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> b.eagainInitialBackoff(Duration.ZERO))
                .getMessage().contains("eagainInitialBackoff"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> b.eagainMaxRetries(-1)).getMessage()
                .contains("eagainMaxRetries"));
        assertThrows(NullPointerException.class, () -> b.notify(null));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> b.handshakeStepsPerLoopTurn(-1)).getMessage()
                .contains("handshakeStepsPerLoopTurn"));
        OffloadConfig fair = OffloadConfig.builder().handshakeStepsPerLoopTurn(3).build();
        assertEquals(3, fair.toBuilder().build().handshakeStepsPerLoopTurn(), "kept by toBuilder");
        assertTrue(fair.toString().contains("handshakeStepsPerLoopTurn=3"), fair.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OffloadConfig.builder()
                .eagainInitialBackoff(Duration.ofMillis(10)).eagainMaxBackoff(Duration.ofMillis(5)).build());
        assertTrue(e.getMessage().contains("eagainMaxBackoff"), e.getMessage());
        assertEquals(Duration.ZERO, OffloadConfig.builder().operationTimeout(Duration.ZERO).build()
                .operationTimeout());
    }
}
