package io.asyncctx.coreonly;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.AsyncSslContextBuilder;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.util.ReferenceCountUtil;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A project that depends on the core artifact alone (the README's list: the library, netty-codec-http, BoringSSL, the
 * epoll native, ACCP) has no QUIC and no PKCS#11 jar on its class path, compiles the README's server as it stands,
 * serves curl with it, and offloads every handshake. Real BoringSSL handshakes, real curl.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class CoreOnlyProjectTest {

    private static final Pattern LISTENING = Pattern.compile("listening on ([^:\\s]+):(\\d+)");

    @Test
    void shouldHaveNeitherQuicNorPkcs11OnTheClassPath() {
        List<String> jars = new ArrayList<>();
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            jars.add(Path.of(entry).getFileName().toString());
        }
        assertTrue(jars.stream().anyMatch(j -> j.startsWith("netty-async-ctx-0")), () -> "the core jar: " + jars);
        for (String jar : jars) {
            assertTrue(!jar.contains("quic") && !jar.contains("pkcs11") && !jar.contains("http3"),
                    () -> "a TCP project pulled " + jar + ": " + jars);
        }
        assertThrows(ClassNotFoundException.class, () -> Class.forName("io.netty.handler.codec.quic.QuicSslContext"));
        assertThrows(ClassNotFoundException.class, () -> Class.forName("io.asyncctx.quic.QuicAsyncSslContext"));
        assertThrows(ClassNotFoundException.class, () -> Class.forName("io.asyncctx.engine.pkcs11.Pkcs11Engine"));
    }

    @Test
    void shouldCompileTheReadmeServerAndServeCurl(@TempDir Path dir) throws Exception {
        Path classes = dir.resolve("classes");
        Path src = dir.resolve("MinimalOffloadServer.java");
        Files.writeString(src, readmeJavaBlock());
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        String cp = System.getProperty("java.class.path");
        int rc = javac.run(null, err, err, "--release", "17", "-cp", cp, "-d", classes.toString(), src.toString());
        assertEquals(0, rc, err.toString(StandardCharsets.UTF_8));

        Path[] pem = selfSigned(dir);
        String java = ProcessHandle.current().info().command().orElse("java");
        Process server = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                classes + File.pathSeparator + cp, "MinimalOffloadServer", "--cert", pem[0].toString(), "--key",
                pem[1].toString(), "--port", "0").redirectErrorStream(true).start();
        try {
            int port = awaitListening(server);
            String body = run(List.of("curl", "-sS", "--max-time", "20", "--cacert", pem[0].toString(),
                    "https://127.0.0.1:" + port + "/"));
            assertTrue(body.contains("hello over TLS"), body);
        } finally {
            server.destroy();
            if (!server.waitFor(20, TimeUnit.SECONDS)) {
                server.destroyForcibly();
            }
        }
    }

    @Test
    void shouldOffloadEveryHandshake(@TempDir Path dir) throws Exception {
        Path[] pem = selfSigned(dir);
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        try (SoftwareEngine engine = SoftwareEngine.builder().pem(pem[1], pem[0]).build()) {
            AsyncSslContext ctx = AsyncSslContextBuilder.forServer(engine, pem[0].toFile()).build();
            Channel server = new ServerBootstrap().group(group).channel(EpollServerSocketChannel.class)
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            ch.pipeline().addLast(ctx.newHandler(ch.alloc()), new HttpServerCodec(),
                                    new ChannelInboundHandlerAdapter() {
                                        @Override
                                        public void channelRead(ChannelHandlerContext c, Object msg) {
                                            boolean request = msg instanceof io.netty.handler.codec.http.HttpRequest;
                                            ReferenceCountUtil.release(msg);
                                            if (request) {
                                                DefaultFullHttpResponse res = new DefaultFullHttpResponse(
                                                        HttpVersion.HTTP_1_1, HttpResponseStatus.NO_CONTENT);
                                                HttpUtil.setContentLength(res, 0);
                                                c.writeAndFlush(res);
                                            }
                                        }
                                    });
                        }
                    }).bind("127.0.0.1", 0).sync().channel();
            try {
                int port = ((InetSocketAddress) server.localAddress()).getPort();
                for (int i = 0; i < 3; i++) {
                    String code = run(List.of("curl", "-sS", "--max-time", "20", "--cacert", pem[0].toString(),
                            "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:" + port + "/"));
                    assertEquals("204", code.strip());
                }
                assertEquals(3, ctx.offloadedOperations(), "one signature per full handshake, on the engine");
                assertEquals(0, ctx.detachedOperations());
                assertEquals(0, ctx.inlineOperations());
            } finally {
                server.close().sync();
            }
        } finally {
            group.shutdownGracefully(0, 0, TimeUnit.SECONDS).sync();
        }
    }

    /** The README's "Use it in your project" server, as it stands. */
    private static String readmeJavaBlock() throws Exception {
        String readme = Files.readString(Path.of("..", "README.md"));
        int section = readme.indexOf("## Use it in your project");
        assertTrue(section >= 0, "README has no 'Use it in your project' section");
        int start = readme.indexOf("```java\n", section);
        int end = readme.indexOf("```\n", start + 8);
        assertTrue(start > 0 && end > start, "no java block in the section");
        return readme.substring(start + "```java\n".length(), end);
    }

    private static Path[] selfSigned(Path dir) throws Exception {
        Path cert = dir.resolve("chain.pem");
        Path key = dir.resolve("key.pem");
        run(List.of("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.toString(), "-out",
                cert.toString(), "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"));
        return new Path[]{cert, key};
    }

    private static int awaitListening(Process server) throws Exception {
        BufferedReader out = new BufferedReader(new InputStreamReader(server.getInputStream(),
                StandardCharsets.UTF_8));
        StringBuilder seen = new StringBuilder();
        String line;
        while ((line = out.readLine()) != null) {
            seen.append(line).append('\n');
            Matcher m = LISTENING.matcher(line);
            if (m.find()) {
                Thread drain = new Thread(() -> {
                    try {
                        out.transferTo(java.io.Writer.nullWriter());
                    } catch (java.io.IOException e) {
                        // the server ended
                    }
                }, "server-output");
                drain.setDaemon(true);
                drain.start();
                return Integer.parseInt(m.group(2));
            }
        }
        throw new AssertionError("the server ended before listening: " + seen);
    }

    private static String run(List<String> cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), () -> "timed out: " + cmd);
        assertEquals(0, p.exitValue(), () -> cmd + ": " + out);
        assertNotNull(out);
        return out;
    }
}
