package io.asyncctx.netty;

import io.netty.channel.Channel;
import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelHandlerContext;

/**
 * Holds a channel's socket reads while one of its private-key operations waits (paused in its engine, waiting for a
 * free job, or waiting out an EAGAIN backoff), as nginx and HAProxy silence socket events of a paused handshake.
 *
 * <p>Two things keep a paused connection from reading. When the channel reads automatically, autoRead is suspended
 * once the channel has read {@link #BUDGET} bytes during the wait (with autoRead on the transport keeps reading without
 * any {@code read()} call), and restored at resume unless someone turned it back on meanwhile. A channel whose owner
 * turned autoRead off before the budget was used is left alone. The limit: the hold cannot tell an owner's
 * {@code setAutoRead(false)} made while autoRead is suspended (it is already off then) from its own suspension, so
 * such a channel has autoRead switched on at the resume; an owner that must keep reads off turns autoRead off before
 * the handshake, or again once it is done. The suspension is lazy because a TLS peer waits quietly for
 * the server's flight after its ClientHello: toggling autoRead for every operation cost two or three
 * {@code epoll_ctl(EPOLL_CTL_MOD)} calls per handshake (about 9 us of loop CPU under an h2load storm, issue 12), for a
 * peer that sends nothing. And outbound {@code read()} calls (SslHandler issues them by itself while its handshake is
 * not done and autoRead is off) pass only while the bytes read since the pause began are under {@link #BUDGET}; after
 * that they are held, at most one is remembered, and it is issued when the last operation resumes. The budget keeps one
 * read outstanding for a peer that sent its ClientHello and waits, so that a peer that leaves mid-offload is noticed
 * at once on every transport (io_uring and NIO see a close only through a pending read) and its job is cancelled; a
 * peer that floods past the budget gets at most one read batch more, plus the kernel's socket buffers, into the
 * server until the operation resumes (its close is then seen at the resume or at the operation deadline). Because of
 * that bound, these reads take no step of the loop's handshake budget ({@link OffloadConfig#handshakeStepsPerLoopTurn()},
 * {@link KeptReads}): SslHandler only buffers them until the operation resumes.
 *
 * <p>Threading: not thread-safe; every method runs on the channel's event loop.
 */
final class ReadHold {

    /** Bytes a waiting channel may read before its reads are held: one maximal TLS record with its header. */
    static final int BUDGET = 16 * 1024 + 5 + 256;

    private final Channel channel;
    private int waiting;
    private boolean readHeld;
    private boolean autoReadSuspended;
    private long readWhileWaiting;

    ReadHold(Channel channel) {
        this.channel = channel;
    }

    /** One more operation of the channel waits: hold reads until {@link #release} is called as often. */
    void hold() {
        if (waiting++ > 0) {
            return;
        }
        readWhileWaiting = 0;
    }

    /**
     * Called for every outbound {@code read()} that reaches the handler: forwarded unless an operation waits and the
     * channel has used its {@link #BUDGET}, in which case it is remembered (once) for the resume.
     */
    void read(ChannelHandlerContext ctx) {
        if (waiting > 0 && readWhileWaiting >= BUDGET) {
            readHeld = true;
        } else {
            ctx.read();
        }
    }

    /**
     * Called for every inbound buffer: counts what a waiting channel reads, and suspends autoRead once the budget is
     * used (the transport's read loop checks autoRead after each buffer, so it stops there).
     */
    void onRead(int bytes) {
        if (waiting > 0) {
            readWhileWaiting += bytes;
            if (readWhileWaiting >= BUDGET && !autoReadSuspended) {
                ChannelConfig config = channel.config();
                if (config.isAutoRead()) {
                    autoReadSuspended = true;
                    config.setAutoRead(false);
                }
            }
        }
    }

    /** One waiting operation resumed (or ended); the last one lets reads go on. */
    void release(ChannelHandlerContext ctx) {
        if (waiting == 0 || --waiting > 0) {
            return;
        }
        boolean resumeAutoRead = autoReadSuspended;
        autoReadSuspended = false;
        boolean issue = readHeld;
        readHeld = false;
        if (!channel.isActive()) {
            return;
        }
        ChannelConfig config = channel.config();
        if (resumeAutoRead && !config.isAutoRead()) {
            // Turning autoRead back on issues a read through the pipeline, which passes this hold now released.
            config.setAutoRead(true);
        } else if (issue) {
            ctx.read();
        }
    }

    /** True while an operation of the channel waits. */
    boolean isHolding() {
        return waiting > 0;
    }

    /** Bytes read since the current wait began (0 when nothing waits). */
    long readWhileWaiting() {
        return waiting > 0 ? readWhileWaiting : 0;
    }

    /** True while this hold has turned autoRead off (it turns it back on at the release). */
    boolean isAutoReadSuspended() {
        return autoReadSuspended;
    }

    /** True when a {@code read()} arrived during the hold and waits for the release. */
    boolean isReadHeld() {
        return readHeld;
    }
}
