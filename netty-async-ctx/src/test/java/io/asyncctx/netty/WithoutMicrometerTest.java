package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsFixtures.ProcessResult;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.netty.pkitesting.X509Bundle;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Runs in its own surefire execution whose class path lacks Micrometer (see the module's pom): offload, with the
 * default metrics and with the inline policy, works and records nothing.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WithoutMicrometerTest {

    @Test
    void shouldOffloadHandshakesWithoutMicrometerOnTheClassPath() throws Exception {
        assertThrows(ClassNotFoundException.class, () -> Class.forName("io.micrometer.core.instrument.MeterRegistry"),
                "this test must run on a class path without Micrometer");
        X509Bundle cert = TlsFixtures.certificate(KeyKind.EC_P256);
        try (SoftwareEngine engine = TlsFixtures.softwareEngine(cert)) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                    .offloadConfig(OffloadConfig.builder().metrics(OffloadMetrics.none()).build()).build();
            AsyncSslContext inline = AsyncSslContextBuilder.forServer(engine, cert.getCertificate())
                    .inlinePolicy(InlinePolicy.belowMeasuredCost(Duration.ofMillis(5))).build();
            for (AsyncSslContext c : new AsyncSslContext[] {ctx, inline}) {
                try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, c)) {
                    ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
                    assertTrue(r.output().contains("TLSv1.3 TLS_"), r.output());
                }
            }
            assertEquals(1, ctx.offloadedOperations());
            assertEquals(1, inline.inlineOperations());
        }
    }
}
