package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.AbstractAsyncEngine.FdMode;
import io.asyncctx.engine.JcaKeySigner;
import io.asyncctx.WaitFd;
import io.asyncctx.netty.OffloadConfig.Notify;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.asyncctx.testkit.FaultInjectingEngine;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.handler.ssl.SslContext;
import io.netty.pkitesting.X509Bundle;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code asyncctx.wakeups.spurious} counts only wake-ups that found nothing to do: a healthy server doing real TLS 1.3
 * handshakes counts zero on every path, with an engine that completes before the job pauses (its signal arrives after
 * the job has finished) and one that completes after; a signal with no completion behind it still counts one.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TlsSpuriousWakeupTest {

    private static final int HANDSHAKES = 16;

    static Stream<Arguments> paths() {
        return Stream.of(
                Arguments.of(Transport.EPOLL, Notify.FD, FdMode.PER_CTX),
                Arguments.of(Transport.EPOLL, Notify.FD, FdMode.SHARED_PER_LOOP),
                Arguments.of(Transport.EPOLL, Notify.CALLBACK, FdMode.PER_CTX),
                Arguments.of(Transport.IO_URING, Notify.FD, FdMode.PER_CTX),
                Arguments.of(Transport.IO_URING, Notify.FD, FdMode.SHARED_PER_LOOP),
                Arguments.of(Transport.IO_URING, Notify.CALLBACK, FdMode.PER_CTX),
                Arguments.of(Transport.NIO, Notify.CALLBACK, FdMode.PER_CTX));
    }

    private static FaultInjectingEngine engine(X509Bundle cert, FdMode fdMode, double beforePause) {
        return FaultInjectingEngine.builder().name(beforePause > 0 ? "before-pause" : "after-pause")
                .signer(new JcaKeySigner(cert.getKeyPair().getPrivate(), cert.getKeyPair().getPublic(), null))
                .latency(Duration.ofMillis(1), Duration.ofMillis(3)).completeBeforePauseRate(beforePause)
                .fdMode(fdMode).seed(11).build();
    }

    private static double spurious(SimpleMeterRegistry registry) {
        return registry.find(MicrometerOffloadMetrics.PREFIX + "wakeups.spurious").counters().stream()
                .mapToDouble(Counter::count).sum();
    }

    private static double resumed(SimpleMeterRegistry registry) {
        return registry.find(MicrometerOffloadMetrics.PREFIX + "jobs.resumed").counters().stream()
                .mapToDouble(Counter::count).sum();
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("paths")
    void shouldCountNoSpuriousWakeUpOnAHealthyServer(Transport transport, Notify notify, FdMode fdMode)
            throws Exception {
        Loops.Transport lt = Loops.Transport.valueOf(transport.name());
        Loops.factory(lt); // assumes io_uring is available where the test needs it
        X509Bundle cert = TlsFixtures.certificate(KeyKind.EC_P256);
        SslContext client = RobustClients.clientContext();
        MultiThreadIoEventLoopGroup clients = Loops.group(Loops.Transport.NIO, 1);
        try {
            for (double beforePause : new double[] {1.0, 0.0}) {
                SimpleMeterRegistry registry = new SimpleMeterRegistry();
                try (FaultInjectingEngine engine = engine(cert, fdMode, beforePause)) {
                    OffloadConfig config = OffloadConfig.builder().notify(notify)
                            .metrics(new MicrometerOffloadMetrics(registry)).build();
                    AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                            .offloadConfig(config).build();
                    try (RobustTlsServer server = new RobustTlsServer(transport, 1, ctx)) {
                        List<RobustClients.Client> open = new ArrayList<>();
                        for (int i = 0; i < HANDSHAKES; i++) {
                            // Two at a time: pauses overlap, and so do the signals on a shared eventfd.
                            RobustClients.Client c = RobustClients.connect(clients, client, server.port());
                            open.add(c);
                            if (open.size() == 2) {
                                for (RobustClients.Client o : open) {
                                    o.get();
                                    String res = o.responses().poll(30, TimeUnit.SECONDS);
                                    assertTrue(res != null && res.startsWith("200 TLSv1.3"), "response " + res);
                                    o.channel().close().sync();
                                }
                                open.clear();
                            }
                        }
                        assertEquals(HANDSHAKES, server.count(RobustTlsServer.Outcome.OK), server.failures::toString);
                        // Late signals of early completions may still be on their way: let them arrive, then count.
                        Loops.await("every job ended", () -> server.sum(AsyncOffloadLoops::jobsInFlight) == 0);
                        IoEventLoop loop = server.loops().get(0);
                        // This engine signals an early completion before its submit returns, so every signal was
                        // sent before the handshakes ended: a few loop turns see them all (fds, queued callbacks).
                        for (int i = 0; i < 3; i++) {
                            Loops.onLoop(loop, () -> { });
                        }
                        assertEquals(0.0, spurious(registry), "spurious wake-ups on a healthy server ("
                                + (beforePause > 0 ? "engine completes before the pause" : "after the pause")
                                + ", completed before pause: " + engine.completedBeforePause() + ")");
                        // (Some handshakes may resume a session and sign nothing: count the engine's operations.)
                        assertTrue(engine.submitted() > 0);
                        if (beforePause > 0) {
                            assertEquals(engine.submitted(), engine.completedBeforePause(), engine::toString);
                            assertEquals(0.0, resumed(registry), "no job paused");
                        } else {
                            // Most paused (a 1 ms completion may still beat a pause on a busy machine).
                            assertTrue(resumed(registry) > 0 && resumed(registry) <= engine.submitted(),
                                    "resumed " + resumed(registry) + " of " + engine.submitted());
                        }
                    }
                }
            }
        } finally {
            Loops.shutdown(clients);
        }
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("paths")
    void shouldCountOneForASignalWithNoCompletion(Transport transport, Notify notify, FdMode fdMode)
            throws Exception {
        Loops.Transport lt = Loops.Transport.valueOf(transport.name());
        MultiThreadIoEventLoopGroup group = Loops.group(lt, 1);
        try (TestEngine engine = new TestEngine(fdMode)) {
            IoEventLoop loop = (IoEventLoop) group.next();
            SimpleMeterRegistry registry = new SimpleMeterRegistry();
            OffloadConfig config = OffloadConfig.builder().notify(notify)
                    .metrics(new MicrometerOffloadMetrics(registry)).build();
            // First a job that completes before it pauses: its late signal is not spurious.
            engine.behaviour = TestEngine.Behaviour.SYNC;
            AsyncOffloadConnection conn = Loops.onLoop(loop, () -> AsyncOffloadConnection.open(loop, engine, config));
            assertTrue(Loops.onLoop(loop, () -> conn.submit(Loops.op(1))).get(10, TimeUnit.SECONDS) != null);
            engine.behaviour = TestEngine.Behaviour.ON_DEMAND;
            var f = Loops.onLoop(loop, () -> conn.submit(Loops.op(2)));
            Loops.await("engine holds the op", () -> engine.pendingCount() == 1);
            Loops.onLoop(loop, () -> { });
            assertEquals(0.0, spurious(registry), "the late signal of the first job");
            // Then a signal with nothing behind it.
            if (notify == Notify.FD) {
                WaitFd wfd = Loops.onLoop(loop, () -> conn.waitCtx().getFd(engine));
                io.netty.channel.epoll.Native.eventFdWrite(wfd.fd(), 1L); // the engine's fd, no completion behind
            } else {
                var binding = Loops.onLoop(loop, () -> conn.waitCtx().getCallbackBinding());
                binding.call();
            }
            Loops.await("spurious wake-up counted", () -> spurious(registry) == 1.0);
            assertEquals(1, (int) Loops.onLoop(loop, conn::spuriousWakeups));
            assertEquals(1, engine.completeAll());
            assertTrue(f.get(10, TimeUnit.SECONDS) != null);
            Loops.onLoop(loop, () -> { });
            assertEquals(1.0, spurious(registry), "the real completion is not spurious");
            Loops.onLoop(loop, conn::close);
        } finally {
            Loops.shutdown(group);
        }
    }
}
