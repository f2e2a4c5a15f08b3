package io.asyncctx.netty;

import static io.asyncctx.netty.SniFixtures.cert;
import static io.asyncctx.netty.SniFixtures.softwareContext;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.pkitesting.CertificateBuilder.Algorithm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Many sites on one port through Netty's own {@code SniHandler} over an {@link AsyncSniMapping}: openssl s_client with
 * exact, wildcard, unknown and no server name gets the right certificate, and the key operation is counted on the
 * context of that site only (RSA in software, P-256 in software, a default RSA site).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TlsSniTest {

    private static AsyncSslContext shop;
    private static AsyncSslContext wild;
    private static AsyncSslContext fallback;
    private static AsyncSniMapping mapping;
    private static SniTestServer server;

    @BeforeAll
    static void start() throws Exception {
        shop = softwareContext(cert("shop.example.org", Algorithm.rsa2048, 1));
        wild = softwareContext(cert("*.example.org", Algorithm.ecp256, 2));
        fallback = softwareContext(cert("default.test", Algorithm.rsa2048, 3));
        mapping = AsyncSniMapping.builder()
                .site("shop", shop, "shop.example.org")
                .site("wild", wild, "*.example.org")
                .site("default", fallback, "default.test")
                .defaultSite("default")
                .build();
        server = new SniTestServer(TlsTestServer.Transport.EPOLL, 2, mapping);
    }

    @AfterAll
    static void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        if (mapping != null) {
            mapping.close();
        }
    }

    @Test
    void shouldServeEachNameWithItsOwnCertificateAndCountTheKeyOperationOnItsContext() throws Exception {
        // server name (null: none sent) -> site
        Object[][] cases = {
            {"shop.example.org", "shop"},
            {"a.example.org", "wild"},
            {"WWW.Example.ORG", "wild"},
            {"a.b.example.org", "default"}, // a wildcard covers one label, as a wildcard certificate does
            {"example.org", "default"},
            {"unknown.test", "default"},
            {null, "default"},
        };
        Map<String, AsyncSslContext> contexts = Map.of("shop", shop, "wild", wild, "default", fallback);
        Map<String, String> cn = Map.of("shop", "shop.example.org", "wild", "*.example.org",
                "default", "default.test");
        List<String> failures = new ArrayList<>();
        for (Object[] c : cases) {
            String name = (String) c[0];
            String site = (String) c[1];
            long[] before = ops();
            List<String> cmd = new ArrayList<>(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + server.port(),
                    "-no_ticket", "-ign_eof"));
            if (name == null) {
                cmd.add("-noservername");
            } else {
                cmd.addAll(List.of("-servername", name));
            }
            TlsFixtures.ProcessResult r = TlsFixtures.run(cmd, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    30);
            assertEquals(0, r.exitCode(), r.output());
            assertTrue(r.output().contains("subject=CN = " + cn.get(site)), name + " -> expected " + cn.get(site)
                    + ": " + r.output());
            assertTrue(r.output().contains("HTTP/1.1 200 OK"), r.output());
            long[] after = ops();
            String[] order = {"shop", "wild", "default"};
            for (int i = 0; i < order.length; i++) {
                long expected = order[i].equals(site) ? 1 : 0;
                if (after[i] - before[i] != expected) {
                    failures.add(name + ": site " + order[i] + " counted " + (after[i] - before[i]) + " operations");
                }
            }
            assertSame(contexts.get(site), mapping.context(name));
        }
        assertTrue(failures.isEmpty(), failures.toString());
        assertEquals(1, mapping.metrics("shop").operations());
        assertEquals(2, mapping.metrics("wild").operations());
        assertEquals(4, mapping.metrics("default").operations());
        for (AsyncSniMapping.SiteMetrics m : mapping.metrics()) {
            assertEquals(0, m.failedOperations(), m.toString());
            assertTrue(m.meanOperationMicros() > 0, m.toString());
        }
        assertEquals(0, server.handshakeFailures.get(), String.valueOf(server.lastHandshakeFailure));
    }

    @Test
    void shouldRefuseAmbiguousOrMalformedSetups() throws Exception {
        AsyncSslContext a = softwareContext(cert("a.test", Algorithm.ecp256, 10));
        AsyncSslContext b = softwareContext(cert("b.test", Algorithm.ecp256, 11));
        try {
            IllegalArgumentException twice = assertThrows(IllegalArgumentException.class, () -> AsyncSniMapping
                    .builder().site("a", a, "x.test").site("b", b, "X.test.").build());
            assertTrue(twice.getMessage().contains("'x.test' is given to both site 'a' and site 'b'"),
                    twice.getMessage());
            IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                    () -> AsyncSniMapping.builder().site("a", a, "a.*.test"));
            assertTrue(bad.getMessage().contains("wildcard of one label at the start"), bad.getMessage());
            IllegalArgumentException sameCtx = assertThrows(IllegalArgumentException.class,
                    () -> AsyncSniMapping.builder().site("a", a).site("b", a));
            assertTrue(sameCtx.getMessage().contains("already site 'a'"), sameCtx.getMessage());
            IllegalArgumentException noDefault = assertThrows(IllegalArgumentException.class,
                    () -> AsyncSniMapping.builder().site("a", a).defaultSite("zz").build());
            assertTrue(noDefault.getMessage().contains("defaultSite 'zz' is not a site"), noDefault.getMessage());
            try (AsyncSniMapping m = AsyncSniMapping.builder().site("a", a, "a.test").site("b", b, "*.b.test")
                    .build()) {
                assertEquals("a", m.siteOf("nothing.test")); // the first site is the default
                assertEquals("b", m.siteOf("x.b.test"));
                IllegalArgumentException noSite = assertThrows(IllegalArgumentException.class,
                        () -> m.replace("c", a));
                assertTrue(noSite.getMessage().contains("no site 'c'"), noSite.getMessage());
            }
        } finally {
            a.engine().close();
            b.engine().close();
        }
    }

    private static long[] ops() {
        return new long[] {shop.offloadedOperations(), wild.offloadedOperations(), fallback.offloadedOperations()};
    }
}
