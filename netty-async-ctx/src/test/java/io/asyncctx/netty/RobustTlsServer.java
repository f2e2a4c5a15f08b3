package io.asyncctx.netty;

import io.asyncctx.AsyncEngineException;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoop;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.NotSslRecordException;
import io.netty.util.concurrent.EventExecutor;

import java.net.InetSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import javax.net.ssl.SSLException;

/**
 * A TLS test server for the robustness tests: like {@link TlsTestServer} (HTTP/1.1 "protocol cipher" answers), and it
 * also keeps every accepted channel's {@link AsyncOffloadHandler} in accept order, counts open child channels, and
 * sorts handshake outcomes by cause ({@link Outcome}).
 *
 * <p>Threading: start and close from the test thread; the counters are updated on the event loops and read anywhere.
 */
final class RobustTlsServer implements AutoCloseable {

    /** How a handshake ended, from its failure's cause chain. */
    enum Outcome {
        /** Completed. */
        OK,
        /** The operation's deadline passed ({@link AsyncOffloadTimeoutException} in the chain). */
        TIMEOUT,
        /** The engine failed the operation ({@link AsyncEngineException} in the chain). */
        ENGINE_ERROR,
        /** The peer went away first (closed channel, or "closed while handshake was in progress"). */
        PEER_CLOSED,
        /** The peer sent something that is not TLS, or a broken handshake. */
        BAD_INPUT,
        /** Anything else: a bug. */
        UNEXPECTED
    }

    /** SslHandler's handshake timeout on this server: it closes peers that never finish (and whose reset was missed). */
    static final long HANDSHAKE_TIMEOUT_MILLIS = 5_000;

    final MultiThreadIoEventLoopGroup group;
    final Channel serverChannel;
    final List<AsyncOffloadHandler> handlers = new CopyOnWriteArrayList<>();
    final List<Channel> children = new CopyOnWriteArrayList<>();
    /** Bytes read from each accepted socket (by the transport, before TLS), in accept order. */
    final List<BytesRead> bytesRead = new CopyOnWriteArrayList<>();
    /** The same counters by the peer's port (the client socket's local port). */
    private final Map<Integer, BytesRead> bytesReadByPeerPort = new ConcurrentHashMap<>();
    final AtomicInteger accepted = new AtomicInteger();
    final AtomicInteger openChildren = new AtomicInteger();
    final Map<Outcome, LongAdder> outcomes = new ConcurrentHashMap<>();
    final List<Throwable> unexpected = new CopyOnWriteArrayList<>();
    final List<Throwable> failures = new CopyOnWriteArrayList<>();

    RobustTlsServer(TlsTestServer.Transport transport, int threads, AsyncSslContext context)
            throws InterruptedException {
        this(transport, new MultiThreadIoEventLoopGroup(threads, transport.factory()), context,
                HANDSHAKE_TIMEOUT_MILLIS);
    }

    /**
     * A server on {@code group}, whose loops are of {@code transport}'s kind (a test's own, such as loops that record
     * what is scheduled on them); it shuts the group down on close. SslHandler's handshake timeout is
     * {@code handshakeTimeoutMillis}.
     */
    RobustTlsServer(TlsTestServer.Transport transport, MultiThreadIoEventLoopGroup group, AsyncSslContext context,
                    long handshakeTimeoutMillis) throws InterruptedException {
        for (Outcome o : Outcome.values()) {
            outcomes.put(o, new LongAdder());
        }
        this.group = group;
        boolean success = false;
        try {
            serverChannel = new ServerBootstrap()
                    .group(group)
                    .channel(transport.serverChannel())
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            accepted.incrementAndGet();
                            openChildren.incrementAndGet();
                            ch.closeFuture().addListener(f -> openChildren.decrementAndGet());
                            SslHandler ssl = context.newHandler(ch.alloc());
                            AsyncOffloadHandler offload = AsyncSslContext.offloadHandlerOf(ssl);
                            ssl.setHandshakeTimeoutMillis(handshakeTimeoutMillis);
                            handlers.add(offload);
                            children.add(ch);
                            BytesRead counter = new BytesRead();
                            bytesRead.add(counter);
                            InetSocketAddress peer = ch.remoteAddress();
                            if (peer != null) { // null on io_uring when the peer has reset already
                                bytesReadByPeerPort.put(peer.getPort(), counter);
                            }
                            ch.pipeline().addLast(counter, ssl);
                            ssl.handshakeFuture().addListener(f -> {
                                Outcome o = f.isSuccess() ? Outcome.OK : classify(f.cause());
                                outcomes.get(o).increment();
                                if (!f.isSuccess()) {
                                    if (failures.size() < 64) {
                                        failures.add(f.cause());
                                    }
                                    if (o == Outcome.UNEXPECTED) {
                                        unexpected.add(f.cause());
                                    }
                                }
                            });
                            ch.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(8192),
                                    new TlsTestServer.InfoHandler());
                        }
                    })
                    .bind("127.0.0.1", 0).sync().channel();
            success = true;
        } finally {
            if (!success) {
                group.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            }
        }
    }

    /** Counts the bytes the transport read from one socket; sits first in the pipeline. */
    static final class BytesRead extends ChannelInboundHandlerAdapter {
        private final AtomicLong bytes = new AtomicLong();

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof ByteBuf b) {
                bytes.addAndGet(b.readableBytes());
            }
            ctx.fireChannelRead(msg);
        }

        long get() {
            return bytes.get();
        }
    }

    /**
     * Waits until the server has read at least {@code bytes} bytes from the client socket whose local port is
     * {@code peerPort}. They are handed to the TLS handler in the same loop task that counts them, so whatever they
     * start (a handshake step, an operation submitted to the engine) happens on the loop before it can see anything
     * the client does afterwards (a reset). Any thread but the server's loops.
     */
    void awaitRead(int peerPort, int bytes) throws InterruptedException {
        Loops.await("the server read " + bytes + " bytes from port " + peerPort, () -> {
            BytesRead counter = bytesReadByPeerPort.get(peerPort);
            return counter != null && counter.get() >= bytes;
        });
    }

    int port() {
        return ((InetSocketAddress) serverChannel.localAddress()).getPort();
    }

    long count(Outcome o) {
        return outcomes.get(o).sum();
    }

    long handshakesEnded() {
        long n = 0;
        for (LongAdder a : outcomes.values()) {
            n += a.sum();
        }
        return n;
    }

    List<IoEventLoop> loops() {
        List<IoEventLoop> loops = new ArrayList<>();
        for (EventExecutor e : group) {
            loops.add((IoEventLoop) e);
        }
        return loops;
    }

    /** Sum of a per-loop counter over this server's loops. */
    long sum(java.util.function.ToLongFunction<IoEventLoop> counter) {
        long n = 0;
        for (IoEventLoop l : loops()) {
            n += counter.applyAsLong(l);
        }
        return n;
    }

    /** What the loops hold now (read on each loop): jobs, waiters, registrations, open connections. */
    String loopState() throws Exception {
        StringBuilder sb = new StringBuilder();
        for (IoEventLoop l : loops()) {
            sb.append(((EventLoop) l).submit(() -> "jobsInFlight=" + AsyncOffloadLoops.jobsInFlight(l)
                    + " jobsWaiting=" + AsyncOffloadLoops.jobsWaiting(l)
                    + " registeredWaitFds=" + AsyncOffloadLoops.registeredWaitFds(l)
                    + " openConnections=" + AsyncOffloadLoops.openConnections(l)).get(10, TimeUnit.SECONDS))
                    .append("; ");
        }
        return sb.toString();
    }

    /** True when no loop holds a job, a waiter, a wait-fd registration or an open offload connection. */
    boolean loopsIdle() {
        for (IoEventLoop l : loops()) {
            if (AsyncOffloadLoops.jobsInFlight(l) != 0 || AsyncOffloadLoops.jobsWaiting(l) != 0
                    || AsyncOffloadLoops.registeredWaitFds(l) != 0 || AsyncOffloadLoops.openConnections(l) != 0) {
                return false;
            }
        }
        return true;
    }

    static Outcome classify(Throwable t) {
        boolean closed = false;
        boolean bad = false;
        boolean engine = false;
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c instanceof AsyncOffloadTimeoutException) {
                return Outcome.TIMEOUT;
            }
            if (c instanceof AsyncEngineException) {
                engine = true;
            } else if (c instanceof ClosedChannelException
                    || String.valueOf(c.getMessage()).contains("closed while SSL/TLS handshake")) {
                closed = true;
            } else if (c instanceof NotSslRecordException || c instanceof SSLException) {
                bad = true;
            }
            for (Throwable s : c.getSuppressed()) {
                if (s instanceof AsyncOffloadTimeoutException) {
                    return Outcome.TIMEOUT;
                }
                if (s instanceof AsyncEngineException) {
                    engine = true;
                }
            }
        }
        if (engine) {
            return Outcome.ENGINE_ERROR;
        }
        if (closed) {
            return Outcome.PEER_CLOSED;
        }
        return bad ? Outcome.BAD_INPUT : Outcome.UNEXPECTED;
    }

    @Override
    public void close() throws InterruptedException {
        serverChannel.close().sync();
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
    }
}
