package io.asyncctx.netty;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelHandlerContext;
import io.netty.util.ReferenceCountUtil;

import java.util.ArrayDeque;
import java.util.function.BooleanSupplier;

/**
 * One channel's inbound reads kept over its loop's handshake budget ({@link OffloadConfig#handshakeStepsPerLoopTurn()},
 * {@link HandshakeTurns}). A read of a handshaking channel is passed on when the loop's turn has budget left, and kept
 * otherwise; once one read is kept, every later read of the channel is kept behind it (whether or not the handshake is
 * still going), so the order is that of the socket. The kept reads are passed on, with one
 * {@code channelReadComplete}, when the loop replays this channel's step in a later turn. While anything is kept, the
 * channel's {@code channelReadComplete} is swallowed (the replay fires its own), its user events (a
 * {@code ChannelInputShutdownEvent} with half-closure allowed) are kept in the same order as the reads, and once more
 * than {@link ReadHold#BUDGET} bytes are kept, autoRead is suspended until the replay, so a peer that floods cannot make
 * the server keep more than about one TLS record and one read batch. The replay turns autoRead back on before it passes
 * the reads on, so that a handler that turns it off while it reads them (backpressure) is not overridden.
 *
 * <p>A read of a channel whose private-key operation waits ({@link ReadHold#isHolding()}) is not a step: SslHandler
 * only buffers it until the operation resumes, and {@link ReadHold} bounds what such a channel reads. It is passed on
 * without taking budget, unless reads are already kept (then it is kept behind them, in order).
 *
 * <p>Ownership: a kept message or event belongs to this object until it is passed on; {@link #releaseAll()} (the
 * channel closed) releases whatever is still kept, and {@link #forwardAll()} (the handler is removed from an open
 * channel) passes it on at once.
 *
 * <p><b>Threading.</b> Not thread-safe: every method runs on the channel's event loop.
 */
final class KeptReads {

    /** A user event kept behind reads (the deque holds messages and these). */
    private record KeptEvent(Object event) {
    }

    private final ChannelHandlerContext ctx;
    private final HandshakeTurns turns;
    private final HandshakeTurns.Step step;
    private final BooleanSupplier handshaking;
    private final ReadHold readHold;
    private final ArrayDeque<Object> kept = new ArrayDeque<>(2);
    private long admittedTurn = -1;
    private long keptBytes;
    private boolean autoReadSuspended;
    private boolean done;
    private long keptTotal;

    KeptReads(ChannelHandlerContext ctx, HandshakeTurns turns, int limit, BooleanSupplier handshaking,
              ReadHold readHold) {
        this.ctx = ctx;
        this.turns = turns;
        this.step = new HandshakeTurns.Step(limit, this::replay);
        this.handshaking = handshaking;
        this.readHold = readHold;
    }

    /**
     * Called for every inbound message: returns true when it was kept (it is owned here from now on), false when the
     * caller passes it on now.
     */
    boolean keep(Object msg) {
        if (done) {
            return false;
        }
        if (kept.isEmpty()) {
            if (!handshaking.getAsBoolean() || admittedTurn == turns.turn() || readHold.isHolding()) {
                return false;
            }
            if (turns.admit(step.limit)) {
                admittedTurn = turns.turn();
                return false;
            }
        }
        kept.add(msg);
        keptTotal++;
        if (msg instanceof ByteBuf b) {
            keptBytes += b.readableBytes();
        }
        turns.defer(step);
        if (keptBytes >= ReadHold.BUDGET && !autoReadSuspended) {
            ChannelConfig config = ctx.channel().config();
            if (config.isAutoRead()) {
                autoReadSuspended = true;
                config.setAutoRead(false);
            }
        }
        return true;
    }

    /**
     * Called for every inbound user event: true when it was kept behind kept reads (owned here from now on, passed on
     * in order at the replay), false when nothing is kept and the caller passes it on now.
     */
    boolean keepEvent(Object event) {
        if (done || kept.isEmpty()) {
            return false;
        }
        kept.add(new KeptEvent(event));
        return true;
    }

    /** True while reads are kept: the channel's {@code channelReadComplete} waits for the replay. */
    boolean isKeeping() {
        return !kept.isEmpty();
    }

    /** Messages kept over the channel's life (loop thread; for tests). */
    long keptTotal() {
        return keptTotal;
    }

    /** True while this object has turned the channel's autoRead off (loop thread; for tests). */
    boolean isAutoReadSuspended() {
        return autoReadSuspended;
    }

    /** The channel closed: release what is kept; nothing is kept from now on. */
    void releaseAll() {
        done = true;
        for (Object m; (m = kept.poll()) != null; ) {
            ReferenceCountUtil.release(payload(m));
        }
        keptBytes = 0;
    }

    /** The handler leaves an open channel: pass on what is kept now; nothing is kept from now on. */
    void forwardAll() {
        done = true;
        try {
            passOn();
        } finally {
            releaseAll(); // only what a failure in passOn left behind
        }
    }

    /**
     * The loop's replay of this channel's step, in a later turn after its I/O pass.
     *
     * @return true when it passed something on, false when it found nothing to do (the step then costs no budget)
     */
    private boolean replay() {
        if (done || kept.isEmpty()) {
            return false;
        }
        if (!ctx.channel().isActive()) {
            releaseAll();
            return false;
        }
        admittedTurn = turns.turn();
        try {
            passOn();
        } finally {
            if (!done && !kept.isEmpty()) {
                turns.defer(step); // passOn failed midway: what is left goes on in a later turn, still in order
            }
        }
        return true;
    }

    /** What a deque entry holds: the message itself, or the user event a {@link KeptEvent} wraps. */
    private static Object payload(Object entry) {
        return entry instanceof KeptEvent e ? e.event() : entry;
    }

    private void passOn() {
        if (kept.isEmpty()) {
            return;
        }
        keptBytes = 0;
        boolean resumeAutoRead = autoReadSuspended;
        autoReadSuspended = false;
        ChannelConfig config = ctx.channel().config();
        if (resumeAutoRead && !config.isAutoRead() && ctx.channel().isActive() && !readHold.isAutoReadSuspended()) {
            // Before the reads go on: a handler that turns autoRead off while it reads them keeps it off.
            config.setAutoRead(true);
        }
        boolean readsToComplete = false;
        for (Object m; (m = kept.poll()) != null; ) {
            if (!ctx.channel().isRegistered()) {
                ReferenceCountUtil.release(payload(m));
            } else if (m instanceof KeptEvent e) {
                if (readsToComplete) {
                    readsToComplete = false;
                    ctx.fireChannelReadComplete(); // as the transport does: the reads' completion, then the event
                }
                ctx.fireUserEventTriggered(e.event());
            } else {
                readsToComplete = true;
                ctx.fireChannelRead(m);
            }
        }
        if (readsToComplete) {
            ctx.fireChannelReadComplete();
        }
    }
}
