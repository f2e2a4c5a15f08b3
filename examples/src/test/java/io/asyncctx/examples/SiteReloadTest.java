package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.ssl.SniHandler;

import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The example server's sites reloaded live: a certificate and key replaced by atomic renames (as certbot does) is
 * served to the next s_client, a corrupt certificate is refused and the old pair keeps serving, SIGHUP triggers a
 * reload, and {@code /metrics} text has the per-site counters.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SiteReloadTest {

    @TempDir
    Path dir;

    @Test
    void shouldServeRenamedFilesRefuseACorruptOneAndReloadOnSighup() throws Exception {
        Path cert = dir.resolve("a.crt");
        Path key = dir.resolve("a.key");
        String first = newPair("a.example.org", cert, key);
        Path other = dir.resolve("b.crt");
        Path otherKey = dir.resolve("b.key");
        newPair("b.example.org", other, otherKey);
        Sites sites = new Sites(List.of(Sites.Spec.parse("a.example.org," + cert + "," + key),
                Sites.Spec.parse("*.example.org," + other + "," + otherKey)), null, b -> b);
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        try (sites; SiteReloader reloader = new SiteReloader(sites)) {
            Channel server = new ServerBootstrap().group(group).channel(EpollServerSocketChannel.class)
                    .childHandler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            ch.pipeline().addLast(new SniHandler(sites.mapping()));
                        }
                    }).bind("127.0.0.1", 0).sync().channel();
            int port = ((InetSocketAddress) server.localAddress()).getPort();
            reloader.start();
            assertEquals(first, served(port, "a.example.org"));

            // Renewal: new files written aside, renamed over the old ones.
            Path newCert = dir.resolve("new.crt.tmp");
            Path newKey = dir.resolve("new.key.tmp");
            String second = newPair("a.example.org", newCert, newKey);
            Files.move(newKey, key, StandardCopyOption.ATOMIC_MOVE);
            Files.move(newCert, cert, StandardCopyOption.ATOMIC_MOVE);
            await("the renamed pair is served", () -> second.equals(servedQuietly(port, "a.example.org")));

            // A corrupt certificate is refused; the pair in use keeps serving.
            long refusals = sites.reloadCounts()[2];
            Path bad = dir.resolve("bad.tmp");
            Files.writeString(bad, "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
            Files.move(bad, cert, StandardCopyOption.ATOMIC_MOVE);
            await("the corrupt file is refused", () -> sites.reloadCounts()[2] > refusals);
            assertEquals(second, served(port, "a.example.org"));

            // SIGHUP asks for a reload, unless this JVM was started with SIGHUP ignored (nohup): then the reloader
            // knows it cannot and says so (see SiteReloader.SIGHUP_IGNORED); that case is all this JVM can check.
            assertEquals(!sighupIgnoredByParent(), reloader.sighupHandled(), "the reloader's view of SIGHUP");
            if (reloader.sighupHandled()) {
                long attempts = sites.reloadCounts()[0];
                Process kill = new ProcessBuilder("kill", "-HUP", Long.toString(ProcessHandle.current().pid()))
                        .start();
                assertEquals(0, kill.waitFor());
                await("SIGHUP reloads", () -> sites.reloadCounts()[0] > attempts);
            }

            String metrics = sites.prometheus();
            assertTrue(metrics.contains("asyncctx_site_rotations_total{site=\"a.example.org\"} 1"), metrics);
            assertTrue(metrics.contains("asyncctx_site_operations_total{site=\"*.example.org\"} 0"), metrics);
            server.close().sync();
        } finally {
            group.shutdownGracefully(0, 2, TimeUnit.SECONDS).sync();
        }
    }

    /** True when this process ignores SIGHUP (its SigIgn mask in /proc, bit 1), as under nohup. */
    static boolean sighupIgnoredByParent() throws java.io.IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("SigIgn:")) {
                return (Long.parseUnsignedLong(line.substring(7).trim(), 16) & 1L) != 0;
            }
        }
        return false;
    }

    /** Makes a P-256 pair for {@code cn}; returns the certificate's serial as openssl prints it. */
    private static String newPair(String cn, Path cert, Path key) throws Exception {
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key.toString(), "-out", cert.toString(), "-days", "2", "-subj", "/CN=" + cn);
        return run("openssl", "x509", "-noout", "-serial", "-in", cert.toString()).trim().substring(7);
    }

    private static String served(int port, String name) throws Exception {
        return run("sh", "-c", "openssl s_client -connect 127.0.0.1:" + port + " -servername " + name
                + " </dev/null 2>/dev/null | openssl x509 -noout -serial").trim().substring(7);
    }

    private static String servedQuietly(int port, String name) {
        try {
            return served(port, name);
        } catch (Exception | AssertionError e) {
            return null;
        }
    }

    private static String run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        p.getInputStream().transferTo(out);
        if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", cmd) + ": " + out.toString(StandardCharsets.UTF_8));
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        io.asyncctx.testkit.Await.until(what, java.time.Duration.ofSeconds(30), condition);
    }
}
