package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The read-hold logic on an {@link EmbeddedChannel}: outbound {@code read()} calls that reach the hold are counted at
 * the head of the pipeline, as the transport would see them.
 */
class ReadHoldTest {

    /** Counts the reads that pass it on their way to the transport. */
    static final class ReadCounter extends ChannelOutboundHandlerAdapter {
        int reads;

        @Override
        public void read(ChannelHandlerContext ctx) {
            reads++;
            ctx.read();
        }
    }

    /** Routes outbound reads through a {@link ReadHold}, as AsyncOffloadHandler does. */
    static final class Gate extends ChannelOutboundHandlerAdapter {
        ReadHold hold;
        ChannelHandlerContext ctx;

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            this.ctx = ctx;
            hold = new ReadHold(ctx.channel());
        }

        @Override
        public void read(ChannelHandlerContext ctx) {
            hold.read(ctx);
        }
    }

    private EmbeddedChannel channel;
    private ReadCounter counter;
    private Gate gate;

    @BeforeEach
    void setUp() {
        counter = new ReadCounter();
        gate = new Gate();
        channel = new EmbeddedChannel(counter, gate);
        counter.reads = 0;
    }

    @Test
    void shouldForwardReadsWhenNothingWaits() {
        channel.read();
        channel.read();
        assertEquals(2, counter.reads);
        assertFalse(gate.hold.isHolding());
    }

    @Test
    void shouldHoldReadsWhileAnOperationWaitsAndIssueOneWhenItResumes() {
        assertTrue(channel.config().isAutoRead());
        gate.hold.hold();
        assertFalse(channel.config().isAutoRead(), "autoRead suspended for the pause");
        gate.hold.onRead(ReadHold.BUDGET);
        channel.read();
        channel.read();
        channel.read();
        assertEquals(0, counter.reads, "no read reaches the transport while the operation waits");
        assertTrue(gate.hold.isReadHeld());

        gate.hold.release(gate.ctx);
        assertTrue(channel.config().isAutoRead(), "autoRead restored");
        assertEquals(1, counter.reads, "one read issued at resume");
        assertFalse(gate.hold.isReadHeld());
        channel.read();
        assertEquals(2, counter.reads, "reads flow again");
    }

    @Test
    void shouldLeaveAutoReadOffWhenTheOwnerTurnedItOff() {
        channel.config().setAutoRead(false);
        gate.hold.hold();
        gate.hold.onRead(ReadHold.BUDGET);
        channel.read();
        channel.read();
        assertEquals(0, counter.reads);
        gate.hold.release(gate.ctx);
        assertFalse(channel.config().isAutoRead(), "the owner's autoRead=false is kept");
        assertEquals(1, counter.reads, "only the held read is issued");
    }

    @Test
    void shouldIssueNoReadAtResumeWhenNoneWasAskedForAndAutoReadIsOff() {
        channel.config().setAutoRead(false);
        gate.hold.hold();
        gate.hold.release(gate.ctx);
        assertEquals(0, counter.reads);
    }

    @Test
    void shouldKeepHoldingUntilTheLastWaitingOperationResumes() {
        gate.hold.hold();
        gate.hold.hold();
        gate.hold.onRead(ReadHold.BUDGET);
        channel.read();
        gate.hold.release(gate.ctx);
        assertTrue(gate.hold.isHolding());
        assertEquals(0, counter.reads);
        assertFalse(channel.config().isAutoRead());
        gate.hold.release(gate.ctx);
        assertFalse(gate.hold.isHolding());
        assertTrue(channel.config().isAutoRead());
        assertEquals(1, counter.reads);
    }

    @Test
    void shouldNotSwitchAutoReadOffAgainWhenSomeoneTurnedItOnDuringThePause() {
        gate.hold.hold();
        gate.hold.onRead(ReadHold.BUDGET);
        channel.read();
        channel.config().setAutoRead(true); // the application's own choice, made during the pause
        int before = counter.reads;
        gate.hold.release(gate.ctx);
        assertTrue(channel.config().isAutoRead());
        assertEquals(before + 1, counter.reads, "the held read is issued once");
    }

    @Test
    void shouldIssueNothingWhenTheChannelClosedDuringThePause() {
        gate.hold.hold();
        gate.hold.onRead(ReadHold.BUDGET);
        channel.read();
        ChannelHandlerContext ctx = gate.ctx;
        channel.close();
        int before = counter.reads;
        gate.hold.release(ctx);
        assertEquals(before, counter.reads);
        assertFalse(gate.hold.isHolding());
    }

    @Test
    void shouldKeepReadingUnderTheBudgetSoThatAPeerThatLeavesIsNoticed() {
        channel.config().setAutoRead(false);
        gate.hold.hold();
        channel.read();
        assertEquals(1, counter.reads, "a quiet waiting peer keeps one read outstanding");
        gate.hold.onRead(ReadHold.BUDGET - 1);
        channel.read();
        assertEquals(2, counter.reads, "still under the budget");
        gate.hold.onRead(1);
        channel.read();
        channel.read();
        assertEquals(2, counter.reads, "held once the budget is used");
        assertEquals(ReadHold.BUDGET, gate.hold.readWhileWaiting());
        gate.hold.release(gate.ctx);
        assertEquals(3, counter.reads, "the held read goes out at resume");
        assertEquals(0, gate.hold.readWhileWaiting());
    }

    @Test
    void shouldCountTheBudgetAfreshForEachWait() {
        channel.config().setAutoRead(false);
        gate.hold.hold();
        gate.hold.onRead(ReadHold.BUDGET);
        gate.hold.release(gate.ctx);
        gate.hold.onRead(1_000_000); // reads between waits do not count
        gate.hold.hold();
        channel.read();
        assertEquals(1, counter.reads);
    }

    @Test
    void shouldIgnoreAReleaseWithoutAHold() {
        gate.hold.release(gate.ctx);
        assertFalse(gate.hold.isHolding());
        channel.read();
        assertEquals(1, counter.reads);
    }
}
