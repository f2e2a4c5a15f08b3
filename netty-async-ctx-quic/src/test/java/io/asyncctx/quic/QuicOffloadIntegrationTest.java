package io.asyncctx.quic;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.asyncctx.engine.CryptoProviders;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncOffloadLoops;
import io.asyncctx.netty.MicrometerOffloadMetrics;
import io.asyncctx.netty.OffloadConfig;
import io.asyncctx.netty.OffloadConfig.Notify;
import io.asyncctx.testkit.Await;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.handler.codec.http3.Http3;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;
import io.netty.util.concurrent.Future;

import java.net.InetSocketAddress;
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
 * Netty's HTTP/3 client against a QUIC server whose handshakes sign through a {@link QuicAsyncSslContext}: RSA, P-256
 * and Ed25519 keys; the fd and callback paths; epoll, io_uring and NIO. Every handshake's signature is counted at the
 * engine (a keyless context whose key method is silently not called would fail the counts, not the fetch), and
 * closing the connections leaves no job, ctx or wait-fd registration on the loop.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class QuicOffloadIntegrationTest {

    enum KeyKind {
        RSA(CertificateBuilder.Algorithm.rsa2048), EC_P256(CertificateBuilder.Algorithm.ecp256),
        ED25519(CertificateBuilder.Algorithm.ed25519);

        final CertificateBuilder.Algorithm algorithm;

        KeyKind(CertificateBuilder.Algorithm algorithm) {
            this.algorithm = algorithm;
        }
    }

    static X509Bundle certificate(KeyKind kind) throws Exception {
        return new CertificateBuilder().subject("CN=localhost").addSanDnsName("localhost")
                .addSanIpAddress("127.0.0.1").setIsCertificateAuthority(true).algorithm(kind.algorithm)
                .buildSelfSigned();
    }

    static SoftwareEngine softwareEngine(X509Bundle cert) {
        return SoftwareEngine.builder().keyPair(cert.getKeyPair()).workers(2)
                .provider(CryptoProviders.Choice.AUTO).build();
    }

    static IoHandlerFactory factory(String transport) {
        return switch (transport) {
            case "EPOLL" -> EpollIoHandler.newFactory();
            case "IO_URING" -> {
                assumeTrue(IoUring.isAvailable(), () -> "io_uring unavailable: " + IoUring.unavailabilityCause());
                yield IoUringIoHandler.newFactory();
            }
            default -> NioIoHandler.newFactory();
        };
    }

    static Stream<Arguments> cases() {
        List<Arguments> all = new ArrayList<>();
        for (KeyKind k : KeyKind.values()) {
            for (String t : List.of("EPOLL", "IO_URING", "NIO")) {
                for (Notify n : List.of(Notify.FD, Notify.CALLBACK)) {
                    if (!(t.equals("NIO") && n == Notify.FD)) {
                        all.add(Arguments.of(k, t, n));
                    }
                }
            }
        }
        return all.stream();
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("cases")
    void shouldServeHttp3WithEveryHandshakeSignedByTheEngine(KeyKind kind, String transport, Notify notify)
            throws Exception {
        X509Bundle cert = certificate(kind);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MultiThreadIoEventLoopGroup group = new MultiThreadIoEventLoopGroup(1, factory(transport));
        MultiThreadIoEventLoopGroup clientGroup = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        try (SoftwareEngine engine = softwareEngine(cert)) {
            QuicAsyncSslContext ctx = QuicAsyncSslContextBuilder.forServer(engine, cert.getCertificatePath())
                    .applicationProtocols(Http3.supportedApplicationProtocols())
                    .offloadConfig(OffloadConfig.builder().notify(notify)
                            .metrics(new MicrometerOffloadMetrics(registry)).build())
                    .build();
            Channel server = Http3Peers.server(group, Http3Peers.datagramClass(transport), ctx, 10_000);
            InetSocketAddress addr = (InetSocketAddress) server.localAddress();
            int handshakes = 3;
            for (int i = 1; i <= handshakes; i++) {
                String body = Http3Peers.fetchWithNewClient(clientGroup, cert.getRootCertificate(), addr);
                assertTrue(body.startsWith("HTTP/3 cipher=TLS_"), body);
                assertTrue(body.contains("offloaded=" + i), body);
            }
            assertEquals(handshakes, ctx.offloadedOperations());
            assertEquals(handshakes, engine.operationsCompleted(), "every signature came from the engine");
            IoEventLoop loop = (IoEventLoop) server.eventLoop();
            awaitTrue("server connections closed, offload state released", () -> ctx.boundChannels() == 0
                    && AsyncOffloadLoops.openConnections(loop) == 0 && AsyncOffloadLoops.jobsInFlight(loop) == 0
                    && AsyncOffloadLoops.registeredWaitFds(loop) == 0);
            assertEquals(handshakes, registry.get("asyncctx.jobs.started").tag("protocol", "quic").counter().count());
            assertEquals(handshakes, registry.get("asyncctx.jobs.finished").tag("protocol", "quic").counter().count());
            assertTrue(registry.find("asyncctx.jobs.started").tag("protocol", "tcp").counter() == null);
            server.close().sync();
        } finally {
            clientGroup.shutdownGracefully(0, 5, TimeUnit.SECONDS).sync();
            group.shutdownGracefully(0, 5, TimeUnit.SECONDS).sync();
        }
    }

    interface Check {
        boolean ok() throws Exception;
    }

    /** Waits (bounded, {@link Await}) until {@code check} holds; an exception from the check ends the wait with it. */
    static void awaitTrue(String what, Check check) throws Exception {
        Exception[] thrown = new Exception[1];
        Await.until(what, Duration.ofSeconds(40), () -> {
            try {
                return check.ok();
            } catch (Exception e) {
                thrown[0] = e;
                return true;
            }
        });
        if (thrown[0] != null) {
            throw thrown[0];
        }
    }

    static <T> T await(Future<T> f) throws Exception {
        assertTrue(f.await(30, TimeUnit.SECONDS), "future did not complete");
        return f.getNow();
    }
}
