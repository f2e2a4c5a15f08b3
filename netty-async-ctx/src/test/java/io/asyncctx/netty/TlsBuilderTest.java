package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.EngineSession;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.asyncctx.netty.TlsTestServer.Transport;
import io.asyncctx.AsyncWaitCtx;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSslContextOption;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.pkitesting.X509Bundle;

import java.security.PublicKey;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The builder's refusals, each with its message, and the client (mutual TLS) and JDK-provider paths. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TlsBuilderTest {

    private static X509Bundle rsa;
    private static X509Bundle ec;
    private static SoftwareEngine rsaEngine;
    private static SoftwareEngine ecEngine;

    @BeforeAll
    static void setUp() throws Exception {
        rsa = TlsFixtures.certificate(KeyKind.RSA);
        ec = TlsFixtures.certificate(KeyKind.EC_P256);
        rsaEngine = TlsFixtures.softwareEngine(rsa);
        ecEngine = TlsFixtures.softwareEngine(ec);
    }

    @AfterAll
    static void tearDown() {
        rsaEngine.close();
        ecEngine.close();
    }

    @Test
    void shouldRefuseEngineKeyThatDoesNotMatchCertificate() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> AsyncSslContextBuilder.forServer(ecEngine, rsa.getCertificate()).build());
        assertTrue(e.getMessage().contains("does not match the certificate"), e.getMessage());
    }

    @Test
    void shouldRefuseFallbackEngineWhoseKeyDoesNotMatchCertificate() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> AsyncSslContextBuilder.forServer(rsaEngine, rsa.getCertificate())
                        .offloadConfig(OffloadConfig.builder().fallbackEngine(ecEngine).build()).build());
        assertTrue(e.getMessage().contains("fallback engine"), e.getMessage());
        assertTrue(e.getMessage().contains("does not match the certificate"), e.getMessage());
    }

    @Test
    void shouldRefuseUseTasksFalseSystemProperty() {
        System.setProperty(AsyncSslContextBuilder.USE_TASKS_PROPERTY, "false");
        try {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> AsyncSslContextBuilder.forServer(rsaEngine, rsa.getCertificate()).build());
            assertTrue(e.getMessage().contains("crashes the JVM"), e.getMessage());
            assertTrue(e.getMessage().contains("useTasks"), e.getMessage());
        } finally {
            System.clearProperty(AsyncSslContextBuilder.USE_TASKS_PROPERTY);
        }
    }

    @Test
    void shouldRefuseUseTasksFalseOptionWhenItIsSet() {
        AsyncSslContextBuilder b = AsyncSslContextBuilder.forServer(rsaEngine, rsa.getCertificate());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> b.option(OpenSslContextOption.USE_TASKS, false));
        assertTrue(e.getMessage().contains("USE_TASKS=false"), e.getMessage());
        b.option(OpenSslContextOption.USE_TASKS, true); // the harmless value passes
    }

    @Test
    void shouldKeepTheKeyAwayFromBoringSslWhenACustomizerGivesTheContextOne() throws Exception {
        // A customizer that hands Netty the private key (and one that turns tasks off, which would crash the JVM)
        // cannot bypass offload: the builder applies its keyless material and key-method options after them.
        AsyncSslContext ctx = AsyncSslContextBuilder.forServer(rsaEngine, rsa.getCertificate())
                .customize(b -> b.keyManager(rsa.getKeyPair().getPrivate(), rsa.getCertificate()))
                .customize(b -> b.option(OpenSslContextOption.USE_TASKS, false))
                .build();
        try (TlsTestServer server = new TlsTestServer(TlsTestServer.Transport.EPOLL, 1, ctx)) {
            long before = ctx.offloadedOperations();
            TlsFixtures.ProcessResult r = TlsFixtures.sClient(server.port(), "-tls1_3");
            assertTrue(r.output().contains("TLSv1.3 TLS_"), "expected the HTTP body naming TLSv1.3:\n" + r.output());
            assertEquals(before + 1, ctx.offloadedOperations(), "the signature went through the engine, not BoringSSL");
        }
    }

    @Test
    void shouldRefuseAKeyMethodOptionOfItsOwnWhenItIsSet() {
        AsyncSslContextBuilder b = AsyncSslContextBuilder.forServer(rsaEngine, rsa.getCertificate());
        for (OpenSslContextOption<?> option : java.util.List.of(OpenSslContextOption.ASYNC_PRIVATE_KEY_METHOD,
                OpenSslContextOption.PRIVATE_KEY_METHOD)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.option(option, null));
            assertTrue(e.getMessage().contains("option " + option + " is set by AsyncSslContextBuilder itself"),
                    e.getMessage());
        }
    }

    @Test
    void shouldRefuseJdkProviderWithoutKey() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> AsyncSslContextBuilder.forServer(rsaEngine, rsa.getCertificate()).sslProvider(SslProvider.JDK)
                        .build());
        assertTrue(e.getMessage().contains("jdkPrivateKey"), e.getMessage());
    }

    @Test
    void shouldRefuseJdkKeyThatDoesNotMatchCertificate() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> AsyncSslContextBuilder.forServer(rsaEngine, rsa.getCertificate()).sslProvider(SslProvider.JDK)
                        .jdkPrivateKey(ec.getKeyPair().getPrivate()).build());
        assertTrue(e.getMessage().contains("does not match"), e.getMessage());
    }

    @Test
    void shouldRefuseEmptyChainAndNulls() {
        assertThrows(IllegalArgumentException.class, () -> AsyncSslContextBuilder.forServer(rsaEngine));
        assertThrows(NullPointerException.class,
                () -> AsyncSslContextBuilder.forServer(null, rsa.getCertificate()));
    }

    @Test
    void shouldRefuseATlsLibraryWithoutAsyncKeyMethods() {
        IllegalStateException missing = assertThrows(IllegalStateException.class,
                () -> AsyncSslContextBuilder.checkBoringSsl(false, new UnsatisfiedLinkError("no tcnative"), false,
                        null, new TcnativeVersions(java.util.Map.of())));
        assertTrue(missing.getMessage().contains("add io.netty:netty-tcnative-boringssl-static"),
                missing.getMessage());
        assertTrue(missing.getMessage().contains("no tcnative"), missing.getMessage());
        IllegalStateException openssl = assertThrows(IllegalStateException.class,
                () -> AsyncSslContextBuilder.checkBoringSsl(true, null, false, "OpenSSL 3.0.13",
                        TcnativeVersions.onClassPath()));
        assertTrue(openssl.getMessage().contains("OpenSSL 3.0.13"), openssl.getMessage());
        assertTrue(openssl.getMessage().contains("no async private-key methods"), openssl.getMessage());
    }

    @Test
    void shouldNameMixedTcnativeVersionsAndTheOneNeeded() {
        // Vert.x 5.0.7's stack BOM: the classes pinned to 2.0.74 beside the 2.0.84 native library.
        java.util.Map<String, java.util.TreeSet<String>> found = new java.util.LinkedHashMap<>();
        found.put("netty-tcnative-classes", new java.util.TreeSet<>(java.util.Set.of("2.0.74.Final")));
        found.put("netty-tcnative-boringssl-static", new java.util.TreeSet<>(java.util.Set.of("2.0.84.Final")));
        IllegalStateException mixed = assertThrows(IllegalStateException.class,
                () -> AsyncSslContextBuilder.checkBoringSsl(false, new IllegalStateException("multiple incompatible "
                        + "native libraries"), false, null, new TcnativeVersions(found)));
        String m = mixed.getMessage();
        assertTrue(m.contains("netty-tcnative-classes 2.0.74.Final"), m);
        assertTrue(m.contains("netty-tcnative-boringssl-static 2.0.84.Final"), m);
        assertTrue(m.contains("pin io.netty:netty-tcnative-classes"), m);
        assertTrue(m.contains(TcnativeVersions.BUILT_WITH), m);
        assertTrue(!m.contains("add io.netty:netty-tcnative-boringssl-static"), m);
        // This build's own class path has one version, the one the library names as needed.
        TcnativeVersions here = TcnativeVersions.onClassPath();
        assertEquals(null, here.mismatch(), () -> "found " + here.found());
        assertEquals(java.util.Set.of(TcnativeVersions.BUILT_WITH),
                here.found().get("netty-tcnative-boringssl-static"), () -> "found " + here.found());
    }

    @Test
    void shouldAcceptBoringSslHere() {
        // The refusal for a TLS library without async key methods cannot be provoked with BoringSSL loaded: check the
        // facts the check reads, and that it passes on them, so that a refusal in the field means what it says.
        assertTrue(io.netty.handler.ssl.OpenSsl.isAvailable(),
                () -> "tcnative: " + io.netty.handler.ssl.OpenSsl.unavailabilityCause());
        assertTrue(io.netty.handler.ssl.OpenSsl.versionString().contains("BoringSSL"),
                io.netty.handler.ssl.OpenSsl.versionString());
        assertTrue(io.netty.handler.ssl.SslProvider.isOptionSupported(io.netty.handler.ssl.SslProvider.OPENSSL,
                io.netty.handler.ssl.OpenSslContextOption.ASYNC_PRIVATE_KEY_METHOD));
        org.junit.jupiter.api.Assertions.assertDoesNotThrow(() -> AsyncSslContextBuilder.checkBoringSsl());
        // And a context built here really offloads (the key method is installed, not silently skipped).
        AsyncSslContext ctx = org.junit.jupiter.api.Assertions.assertDoesNotThrow(
                () -> AsyncSslContextBuilder.forServer(rsaEngine, rsa.getCertificate()).build());
        assertEquals(0, ctx.offloadedOperations());
    }

    @Test
    void shouldOffloadTheClientCertificateSignatureOfMutualTls() throws Exception {
        X509Bundle clientCert = TlsFixtures.certificate(KeyKind.EC_P256);
        try (SoftwareEngine clientEngine = TlsFixtures.softwareEngine(clientCert)) {
            AsyncSslContext serverCtx = AsyncSslContextBuilder.forServer(rsaEngine, rsa.getCertificate())
                    .clientAuth(ClientAuth.REQUIRE).trustManager(clientCert.getCertificate()).build();
            AsyncSslContext clientCtx = AsyncSslContextBuilder.forClient(clientEngine, clientCert.getCertificate())
                    .trustManager(InsecureTrustManagerFactory.INSTANCE).protocols("TLSv1.3").build();
            EventLoopGroup clientGroup = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
            try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, serverCtx)) {
                Channel ch = new Bootstrap().group(clientGroup).channel(EpollSocketChannel.class)
                        .handler(new ChannelInitializer<SocketChannel>() {
                            @Override
                            protected void initChannel(SocketChannel ch) {
                                ch.pipeline().addLast(clientCtx.newHandler(ch.alloc(), "localhost", server.port()));
                            }
                        }).connect("127.0.0.1", server.port()).sync().channel();
                SslHandler ssl = ch.pipeline().get(SslHandler.class);
                assertTrue(ssl.handshakeFuture().await(30, TimeUnit.SECONDS));
                assertTrue(ssl.handshakeFuture().isSuccess(), () -> String.valueOf(ssl.handshakeFuture().cause()));
                ch.close().sync();
                assertEquals(1, clientCtx.offloadedOperations(), "the client's CertificateVerify was offloaded");
                assertEquals(1, serverCtx.offloadedOperations());
            } finally {
                clientGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
            }
        }
    }

    @Test
    void shouldRunJdkDelegatedTasksOnTheEnginePool() throws Exception {
        AtomicInteger tasks = new AtomicInteger();
        AsyncEngine counting = new AsyncEngine() {
            @Override
            public String name() {
                return "counting";
            }

            @Override
            public PublicKey publicKey() {
                return rsaEngine.publicKey();
            }

            @Override
            public EngineSession newSession(AsyncWaitCtx ctx, Executor owner) {
                return rsaEngine.newSession(ctx, owner);
            }

            @Override
            public Executor taskExecutor() {
                Executor pool = rsaEngine.taskExecutor();
                return task -> {
                    tasks.incrementAndGet();
                    pool.execute(task);
                };
            }

            @Override
            public void close() {
            }
        };
        AsyncSslContext ctx = AsyncSslContextBuilder.forServer(counting, rsa.getCertificate())
                .sslProvider(SslProvider.JDK).jdkPrivateKey(rsa.getKeyPair().getPrivate()).build();
        assertFalse(ctx.isAsync());
        SslContext client = SslContextBuilder.forClient().trustManager(InsecureTrustManagerFactory.INSTANCE).build();
        EventLoopGroup clientGroup = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        try (TlsTestServer server = new TlsTestServer(Transport.EPOLL, 1, ctx)) {
            Channel ch = new Bootstrap().group(clientGroup).channel(EpollSocketChannel.class)
                    .handler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            ch.pipeline().addLast(client.newHandler(ch.alloc(), "localhost", server.port()));
                        }
                    }).connect("127.0.0.1", server.port()).sync().channel();
            SslHandler ssl = ch.pipeline().get(SslHandler.class);
            assertTrue(ssl.handshakeFuture().await(30, TimeUnit.SECONDS));
            assertTrue(ssl.handshakeFuture().isSuccess(), () -> String.valueOf(ssl.handshakeFuture().cause()));
            ch.close().sync();
            assertTrue(tasks.get() > 0, "the JDK engine's delegated tasks ran on the engine's pool");
        } finally {
            clientGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        }
    }
}
