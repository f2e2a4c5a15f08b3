package io.asyncctx.netty;

import static io.asyncctx.netty.SniFixtures.cert;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.SoftwareEngine;
import io.netty.pkitesting.CertificateBuilder.Algorithm;
import io.netty.pkitesting.X509Bundle;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * RSA and ECDSA side by side for one name (nginx's two {@code ssl_certificate} lines), behind Netty's
 * {@code SniHandler}: openssl s_client offering ECDSA signature algorithms gets the ECDSA chain, one offering only
 * RSA(-PSS) gets the RSA chain, in TLS 1.3 and 1.2, and each handshake's key operation runs on the engine of the key of
 * the chain it got.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TlsDualKeyTest {

    private static SoftwareEngine rsa;
    private static SoftwareEngine ec;
    private static AsyncSniMapping mapping;
    private static SniTestServer server;

    @BeforeAll
    static void start() throws Exception {
        X509Bundle rsaCert = cert("dual.example.org", Algorithm.rsa2048, 0x51);
        X509Bundle ecCert = cert("dual.example.org", Algorithm.ecp256, 0xEC);
        rsa = TlsFixtures.softwareEngine(rsaCert);
        ec = TlsFixtures.softwareEngine(ecCert);
        AsyncSslContext dual = AsyncSslContextBuilder.forServer(rsa, rsaCert.getCertificate())
                .secondKey(ec, ecCert.getCertificate()).build();
        mapping = AsyncSniMapping.builder().site("dual", dual, "dual.example.org").build();
        server = new SniTestServer(TlsTestServer.Transport.EPOLL, 2, mapping);
    }

    @AfterAll
    static void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        if (mapping != null) {
            mapping.close(); // closes both engines
        }
    }

    @ParameterizedTest
    @CsvSource({
        "-tls1_3, ECDSA+SHA256, , EC, ECDSA",
        "-tls1_3, RSA-PSS+SHA256, , 51, RSA-PSS",
        "-tls1_3, RSA-PSS+SHA256:ECDSA+SHA256, , EC, ECDSA",
        "-tls1_2, ECDSA+SHA256, , EC, ECDSA",
        "-tls1_2, RSA-PSS+SHA256, , 51, RSA-PSS",
        "-tls1_2, RSA+SHA256, , 51, RSA",
        "-tls1_2, RSA+SHA256:RSA-PSS+SHA256, aRSA, 51, RSA-PSS",
    })
    void shouldPresentTheChainOfTheKeyTypeTheClientOffers(String version, String sigalgs, String cipher,
                                                          String serial, String peerSignature) throws Exception {
        long rsaBefore = rsa.operationsCompleted();
        long ecBefore = ec.operationsCompleted();
        List<String> extra = new ArrayList<>(List.of(version, "-sigalgs", sigalgs));
        if (cipher != null) {
            extra.addAll(List.of("-cipher", cipher));
        }
        String got = SniFixtures.sClientSerial(server.port(), "dual.example.org", extra.toArray(new String[0]));
        assertEquals(serial, got, "serial of the chain for " + version + " " + sigalgs);
        List<String> cmd = new ArrayList<>(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + server.port(),
                "-servername", "dual.example.org", "-no_ticket"));
        cmd.addAll(extra);
        TlsFixtures.ProcessResult r = TlsFixtures.run(cmd, "", 30);
        assertTrue(r.output().contains("Peer signature type: " + peerSignature + "\n")
                || r.output().contains("Peer signature type: " + peerSignature + "\r"), r.output());
        boolean ecChain = serial.equals("EC");
        // Two handshakes (the serial probe and this one), each with one operation on the chosen key's engine.
        assertEquals(ecChain ? 0 : 2, rsa.operationsCompleted() - rsaBefore, "RSA engine");
        assertEquals(ecChain ? 2 : 0, ec.operationsCompleted() - ecBefore, "EC engine");
        assertEquals(0, server.handshakeFailures.get(), String.valueOf(server.lastHandshakeFailure));
    }

    @Test
    void shouldRefuseTwoKeysOfOneType() throws Exception {
        X509Bundle a = cert("x.test", Algorithm.ecp256, 1);
        X509Bundle b = cert("x.test", Algorithm.ecp256, 2);
        SoftwareEngine ea = TlsFixtures.softwareEngine(a);
        SoftwareEngine eb = TlsFixtures.softwareEngine(b);
        try {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> AsyncSslContextBuilder.forServer(ea, a.getCertificate()).secondKey(eb, b.getCertificate()));
            assertTrue(e.getMessage().contains("keys of type EC and EC; give one RSA and one EC"), e.getMessage());
            X509Bundle r = cert("x.test", Algorithm.rsa2048, 3);
            IllegalStateException mismatch = assertThrows(IllegalStateException.class,
                    () -> AsyncSslContextBuilder.forServer(ea, a.getCertificate()).secondKey(eb, r.getCertificate())
                            .build());
            assertTrue(mismatch.getMessage().contains("second engine"), mismatch.getMessage());
        } finally {
            ea.close();
            eb.close();
        }
    }
}
