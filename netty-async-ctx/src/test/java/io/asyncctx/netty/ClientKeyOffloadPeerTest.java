package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.TlsFixtures.KeyKind;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.pkitesting.X509Bundle;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Mutual TLS with the client's key offloaded, against a peer nobody here wrote: {@code openssl s_server -Verify 1}
 * demands a client certificate, verifies it against the CA file and, with {@code -www}, echoes it back in its page.
 * The client's CertificateVerify signature goes through the engine (counted by the context).
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class ClientKeyOffloadPeerTest {

    private static final Pattern ACCEPT = Pattern.compile("ACCEPT 127\\.0\\.0\\.1:(\\d+)");

    @ParameterizedTest(name = "{0} client key, {1}")
    @CsvSource({"RSA, TLSv1.3", "EC_P256, TLSv1.3", "ED25519, TLSv1.3", "RSA, TLSv1.2", "EC_P256, TLSv1.2"})
    void shouldOffloadTheClientKeyAgainstOpensslServerDemandingACertificate(KeyKind kind, String protocol,
                                                                           @TempDir Path dir) throws Exception {
        X509Bundle server = TlsFixtures.certificate(KeyKind.RSA);
        X509Bundle client = TlsFixtures.certificate(kind);
        Path serverCert = Files.writeString(dir.resolve("server.pem"), server.getCertificatePEM());
        Path serverKey = Files.writeString(dir.resolve("server.key"), server.getPrivateKeyPEM());
        Path clientCa = TlsFixtures.writePem(client, dir); // self-signed: the client certificate is its own CA
        Process s = new ProcessBuilder("openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1",
                "-Verify", "1", "-CAfile", clientCa.toString(), "-cert", serverCert.toString(),
                "-key", serverKey.toString(), "-www").redirectErrorStream(true).start();
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        try (SoftwareEngine engine = TlsFixtures.softwareEngine(client)) {
            int port = awaitPort(s);
            AsyncSslContext ctx = AsyncSslContextBuilder.forClient(engine, client.getCertificate())
                    .trustManager(InsecureTrustManagerFactory.INSTANCE).protocols(protocol).build();
            CompletableFuture<String> page = new CompletableFuture<>();
            StringBuilder body = new StringBuilder();
            Channel ch = new Bootstrap().group(group).channel(EpollSocketChannel.class)
                    .handler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            ch.pipeline().addLast(ctx.newHandler(ch.alloc(), "localhost", port));
                            ch.pipeline().addLast(new SimpleChannelInboundHandler<ByteBuf>() {
                                @Override
                                protected void channelRead0(ChannelHandlerContext c, ByteBuf msg) {
                                    body.append(msg.toString(StandardCharsets.ISO_8859_1));
                                }

                                @Override
                                public void channelInactive(ChannelHandlerContext c) {
                                    page.complete(body.toString());
                                }
                            });
                        }
                    }).connect("127.0.0.1", port).sync().channel();
            SslHandler ssl = ch.pipeline().get(SslHandler.class);
            assertTrue(ssl.handshakeFuture().await(30, TimeUnit.SECONDS), "handshake timed out");
            assertTrue(ssl.handshakeFuture().isSuccess(), () -> String.valueOf(ssl.handshakeFuture().cause()));
            ch.writeAndFlush(Unpooled.copiedBuffer("GET / HTTP/1.0\r\n\r\n", StandardCharsets.US_ASCII)).sync();
            String html = page.get(30, TimeUnit.SECONDS);
            assertTrue(html.contains("Client certificate") && !html.contains("no client certificate"), html);
            assertTrue(html.contains("CN=localhost") || html.contains("CN = localhost"), html);
            assertEquals(protocol, ssl.engine().getSession().getProtocol());
            assertEquals(1, ctx.offloadedOperations(), "the client's CertificateVerify went through the engine");
            assertTrue(s.waitFor(30, TimeUnit.SECONDS), "s_server did not end after its one connection");
            String log = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(log.contains("verify return:1"), log);
        } finally {
            s.destroyForcibly();
            group.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        }
    }

    private static int awaitPort(Process s) throws Exception {
        BufferedReader r = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder seen = new StringBuilder();
        String line;
        while ((line = r.readLine()) != null) {
            seen.append(line).append('\n');
            Matcher m = ACCEPT.matcher(line);
            if (m.find()) {
                return Integer.parseInt(m.group(1));
            }
        }
        throw new AssertionError("openssl s_server ended before accepting:\n" + seen);
    }
}
