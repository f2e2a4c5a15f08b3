package io.asyncctx.quic;

import static io.asyncctx.quic.QuicOffloadIntegrationTest.awaitTrue;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.SignatureScheme;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncOffloadLoops;
import io.asyncctx.netty.InlinePolicy;
import io.asyncctx.netty.MicrometerOffloadMetrics;
import io.asyncctx.netty.OffloadConfig;
import io.asyncctx.quic.QuicOffloadIntegrationTest.KeyKind;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.handler.codec.http3.Http3;
import io.netty.pkitesting.X509Bundle;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The inline policy on QUIC, with Netty's HTTP/3 client: a scheme measured as cheap is signed on the QUIC channel's
 * event loop (no job, no engine worker) and counted per context and as {@code asyncctx.operations.inline} tagged
 * {@code protocol=quic}; a scheme above the threshold still runs as a job.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class QuicInlinePolicyTest {

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"EPOLL", "IO_URING", "NIO"})
    void shouldSignCheapSchemeInlineOnTheQuicLoopAndCountIt(String transport) throws Exception {
        X509Bundle cert = QuicOffloadIntegrationTest.certificate(KeyKind.EC_P256);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MultiThreadIoEventLoopGroup group = new MultiThreadIoEventLoopGroup(1,
                QuicOffloadIntegrationTest.factory(transport));
        MultiThreadIoEventLoopGroup clientGroup = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        try (SoftwareEngine engine = QuicOffloadIntegrationTest.softwareEngine(cert)) {
            // 5 ms is far above a P-256 signature on any machine, so the measurement must pick it.
            QuicAsyncSslContext ctx = QuicAsyncSslContextBuilder.forServer(engine, cert.getCertificatePath())
                    .applicationProtocols(Http3.supportedApplicationProtocols())
                    .offloadConfig(OffloadConfig.builder().metrics(new MicrometerOffloadMetrics(registry)).build())
                    .inlinePolicy(InlinePolicy.belowMeasuredCost(Duration.ofMillis(5)))
                    .build();
            assertTrue(ctx.inlineSchemes().contains(SignatureScheme.ECDSA_SECP256R1_SHA256),
                    ctx.inlineSchemes()::toString);
            long engineBefore = engine.operationsCompleted();
            Channel server = Http3Peers.server(group, Http3Peers.datagramClass(transport), ctx, 10_000);
            InetSocketAddress addr = (InetSocketAddress) server.localAddress();
            int handshakes = 3;
            for (int i = 1; i <= handshakes; i++) {
                String body = Http3Peers.fetchWithNewClient(clientGroup, cert.getRootCertificate(), addr);
                assertTrue(body.startsWith("HTTP/3 cipher=TLS_"), body);
                assertTrue(body.contains("offloaded=0 inline=" + i + " inlineHere=1"), body);
            }
            assertEquals(handshakes, ctx.inlineOperations());
            assertEquals(0, ctx.offloadedOperations());
            assertEquals(engineBefore, engine.operationsCompleted(), "the engine's workers did not sign");
            Counter inline = registry.get("asyncctx.operations.inline").tag("protocol", "quic").counter();
            assertEquals(handshakes, inline.count());
            assertNull(registry.find("asyncctx.operations.inline").tag("protocol", "tcp").counter());
            Counter started = registry.find("asyncctx.jobs.started").counter();
            assertEquals(0, started == null ? 0 : started.count(), "no job was started");
            IoEventLoop loop = (IoEventLoop) server.eventLoop();
            awaitTrue("server connections closed", () -> ctx.boundChannels() == 0);
            assertEquals(0, AsyncOffloadLoops.openConnections(loop), "inline signing opened no offload connection");
            assertEquals(0, AsyncOffloadLoops.registeredWaitFds(loop));
            server.close().sync();
        } finally {
            clientGroup.shutdownGracefully(0, 5, TimeUnit.SECONDS).sync();
            group.shutdownGracefully(0, 5, TimeUnit.SECONDS).sync();
        }
    }

    @Test
    void shouldOffloadSchemesAboveTheThreshold() throws Exception {
        X509Bundle cert = QuicOffloadIntegrationTest.certificate(KeyKind.RSA);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MultiThreadIoEventLoopGroup group = new MultiThreadIoEventLoopGroup(1,
                QuicOffloadIntegrationTest.factory("EPOLL"));
        MultiThreadIoEventLoopGroup clientGroup = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        try (SoftwareEngine engine = QuicOffloadIntegrationTest.softwareEngine(cert)) {
            // No RSA-2048 signature takes 1 ns.
            QuicAsyncSslContext ctx = QuicAsyncSslContextBuilder.forServer(engine, cert.getCertificatePath())
                    .applicationProtocols(Http3.supportedApplicationProtocols())
                    .offloadConfig(OffloadConfig.builder().metrics(new MicrometerOffloadMetrics(registry)).build())
                    .inlinePolicy(InlinePolicy.belowMeasuredCost(Duration.ofNanos(1)))
                    .build();
            assertTrue(ctx.inlineSchemes().isEmpty(), ctx.inlineSchemes()::toString);
            long engineBefore = engine.operationsCompleted();
            Channel server = Http3Peers.server(group, Http3Peers.datagramClass("EPOLL"), ctx, 10_000);
            InetSocketAddress addr = (InetSocketAddress) server.localAddress();
            String body = Http3Peers.fetchWithNewClient(clientGroup, cert.getRootCertificate(), addr);
            assertTrue(body.contains("offloaded=1 inline=0 inlineHere=0"), body);
            assertEquals(0, ctx.inlineOperations());
            assertEquals(1, ctx.offloadedOperations());
            assertEquals(engineBefore + 1, engine.operationsCompleted(), "the engine signed");
            assertEquals(1, registry.get("asyncctx.jobs.started").tag("protocol", "quic").counter().count());
            Counter inline = registry.find("asyncctx.operations.inline").counter();
            assertEquals(0, inline == null ? 0 : inline.count());
            server.close().sync();
        } finally {
            clientGroup.shutdownGracefully(0, 5, TimeUnit.SECONDS).sync();
            group.shutdownGracefully(0, 5, TimeUnit.SECONDS).sync();
        }
    }
}
