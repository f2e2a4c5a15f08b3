package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.pkcs11.Pkcs11Engine;
import io.asyncctx.engine.pkcs11.SoftHsmToken;
import io.asyncctx.netty.TlsFixtures.ProcessResult;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Real TLS handshakes whose private key is on a real SoftHSM2 token and never in the JVM: a BoringSSL server with a
 * {@link Pkcs11Engine} (RSA and Ed25519 keys alone on the token with the certificate from a
 * file, an EC key with its certificate read from the token) against openssl s_client and Netty
 * clients, TLS 1.3 and 1.2, fd and callback notification, and the TLS 1.2 static-RSA decryption. Every case checks
 * that the token performed the operation ({@link Pkcs11Engine#completedOperations()}) and that it went through the
 * offload path ({@link AsyncSslContext#offloadedOperations()}).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TlsPkcs11Test {

    /** The keys: RSA and Ed25519 key-only (certificate from a file), EC with its certificate on the token. */
    enum Key {
        RSA("rsa-key", "RSA", true), EC("ec-key", "ECDSA", false), ED25519("ed-key", "ECDSA", true);

        final String label;
        final String tls12Auth;
        final boolean keyOnly;

        Key(String label, String tls12Auth, boolean keyOnly) {
            this.label = label;
            this.tls12Auth = tls12Auth;
            this.keyOnly = keyOnly;
        }
    }

    private static SoftHsmToken token;
    private static Pkcs11Engine rsaEngine;
    private static Pkcs11Engine ecEngine;
    private static Pkcs11Engine edEngine;

    @BeforeAll
    static void createToken() throws Exception {
        SoftHsmToken.assumeAvailable();
        token = SoftHsmToken.builder()
                .key(Key.RSA.label, SoftHsmToken.KeyType.RSA_2048, SoftHsmToken.CertMode.NONE)
                .key(Key.EC.label, SoftHsmToken.KeyType.EC_P256)
                .key(Key.ED25519.label, SoftHsmToken.KeyType.ED25519, SoftHsmToken.CertMode.NONE)
                .build();
        rsaEngine = engineFor(Key.RSA);
        ecEngine = engineFor(Key.EC);
        edEngine = engineFor(Key.ED25519);
    }

    @AfterAll
    static void closeToken() throws Exception {
        if (rsaEngine != null) {
            rsaEngine.close();
        }
        if (ecEngine != null) {
            ecEngine.close();
        }
        if (edEngine != null) {
            edEngine.close();
        }
        if (token != null) {
            token.close();
        }
    }

    /** Key-only keys get their chain as a file would give it; the EC key's chain is read from the token. */
    private static Pkcs11Engine engineFor(Key key) {
        var b = Pkcs11Engine.builder().name("tls-" + key.label).modulePath(token.modulePath())
                .tokenLabel(token.tokenLabel()).pinFile(token.pinFile()).keyLabel(key.label).threads(2);
        if (key.keyOnly) {
            b.certificateChain(token.certificateChain(key.label));
        }
        return b.build();
    }

    private static Pkcs11Engine engine(Key key) {
        return switch (key) {
            case RSA -> rsaEngine;
            case EC -> ecEngine;
            case ED25519 -> edEngine;
        };
    }

    /** A context whose chain is the engine's (from the file for key-only keys, else from the token). */
    private static AsyncSslContext context(Key key, OffloadConfig.Notify notify, String protocol) throws Exception {
        Pkcs11Engine engine = engine(key);
        return AsyncSslContextBuilder.forServer(engine, engine.certificateChain())
                .offloadConfig(OffloadConfig.builder().notify(notify).build())
                .protocols(protocol)
                .build();
    }

    static Stream<Arguments> handshakeCases() {
        List<Arguments> args = new ArrayList<>();
        for (Key k : Key.values()) {
            for (String protocol : List.of("TLSv1.3", "TLSv1.2")) {
                for (OffloadConfig.Notify n : List.of(OffloadConfig.Notify.FD, OffloadConfig.Notify.CALLBACK)) {
                    args.add(Arguments.of(k, protocol, n));
                }
            }
        }
        return args.stream();
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("handshakeCases")
    void shouldCompleteHandshakeWithOpensslWhileTheKeyStaysOnTheToken(Key key, String protocol,
                                                                      OffloadConfig.Notify notify) throws Exception {
        Pkcs11Engine engine = engine(key);
        AsyncSslContext ctx = context(key, notify, protocol);
        try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
            long tokenBefore = engine.completedOperations();
            ProcessResult r = TlsFixtures.sClient(server.port(),
                    protocol.equals("TLSv1.3") ? "-tls1_3" : "-tls1_2");
            String expected = protocol.equals("TLSv1.3") ? "TLSv1.3 TLS_"
                    : "TLSv1.2 TLS_ECDHE_" + key.tls12Auth + "_WITH_";
            assertTrue(r.output().contains(expected), () -> "expected the HTTP body '" + expected + "...':\n"
                    + r.output() + "\nserver: " + server.lastHandshakeFailure);
            assertTrue(r.output().toLowerCase(Locale.ROOT).contains("server certificate\n"), r.output());
            assertTrue(r.output().contains("CN=" + key.label) || r.output().contains("CN = " + key.label),
                    "the chain read from the token was served:\n" + r.output());
            assertEquals(1, ctx.offloadedOperations(), "one signature per full handshake, through the offload path");
            assertEquals(tokenBefore + 1, engine.completedOperations(), "signed on the token");
            Loops.await("the server completed its handshake", () -> server.handshakes.get() == 1);
            assertEquals(0, server.handshakeFailures.get());
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = OffloadConfig.Notify.class, names = {"FD", "CALLBACK"})
    void shouldDecryptOnTheTokenForTls12StaticRsaKeyExchange(OffloadConfig.Notify notify) throws Exception {
        AsyncSslContext ctx = AsyncSslContextBuilder.forServer(rsaEngine, rsaEngine.certificateChain())
                .offloadConfig(OffloadConfig.builder().notify(notify).build())
                .protocols("TLSv1.2")
                .ciphers(List.of("TLS_RSA_WITH_AES_128_GCM_SHA256"))
                .build();
        try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
            long tokenBefore = rsaEngine.completedOperations();
            ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_2", "-cipher", "AES128-GCM-SHA256");
            assertTrue(r.output().contains("TLSv1.2 TLS_RSA_WITH_AES_128_GCM_SHA256"),
                    () -> r.output() + "\nserver: " + server.lastHandshakeFailure);
            assertEquals(1, ctx.offloadedOperations(), "the RSA decryption went through the offload path");
            assertEquals(tokenBefore + 1, rsaEngine.completedOperations(), "decrypted on the token");
        }
    }

    @Test
    void shouldServeConcurrentNettyClientsWithMoreHandshakesThanTokenWorkers() throws Exception {
        int n = 20;
        AsyncSslContext ctx = context(Key.EC, OffloadConfig.Notify.FD, "TLSv1.3");
        SslContext client = TlsFixtures.insecureTls13Client();
        EventLoopGroup clientGroup = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        long tokenBefore = ecEngine.completedOperations();
        try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
            List<Channel> channels = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                channels.add(new Bootstrap().group(clientGroup).channel(EpollSocketChannel.class)
                        .handler(new ChannelInitializer<SocketChannel>() {
                            @Override
                            protected void initChannel(SocketChannel ch) {
                                ch.pipeline().addLast(client.newHandler(ch.alloc()));
                            }
                        }).connect("127.0.0.1", server.port()).sync().channel());
            }
            for (Channel ch : channels) {
                SslHandler h = ch.pipeline().get(SslHandler.class);
                assertTrue(h.handshakeFuture().await(30, TimeUnit.SECONDS), "handshake timed out");
                assertTrue(h.handshakeFuture().isSuccess(), () -> String.valueOf(h.handshakeFuture().cause()));
                ch.close().sync();
            }
            Loops.await("the server completed " + n + " handshakes", () -> server.handshakes.get() == n);
            assertEquals(n, ctx.offloadedOperations());
            assertEquals(tokenBefore + n, ecEngine.completedOperations(), "every signature was made on the token");
        } finally {
            clientGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        }
    }
}
