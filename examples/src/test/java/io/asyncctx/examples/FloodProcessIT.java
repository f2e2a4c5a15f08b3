package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.testkit.FloodingPeer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The attack from outside, against the example server as a process: a client sends a real TLS 1.3 ClientHello, waits
 * until its handshake's key operation is in a slow (3 s) simulated engine, then writes TLS-framed junk as fast as the
 * socket takes it for 2 s. The server must take in no more than its kernel buffers (the client can write under
 * 16 MB; before reads were held it took over 300 MB), its resident memory must stay put, and it must go on serving:
 * curl gets its page, and the flooder is closed once its operation resumes and the junk is read.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class FloodProcessIT {

    private static final long LIMIT = 16L << 20;

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({
        "epoll, fd",
        "epoll, callback",
        "io_uring, fd",
        "io_uring, callback",
        "nio, callback"
    })
    void shouldTakeNoMoreThanTheKernelBuffersFromAFloodedPausedHandshake(String transport, String notify)
            throws Exception {
        Process p = ServerJvm.start(List.of("server", "--port", "0", "--mode", "offload",
                "--transport", transport, "--notify", notify, "--threads", "1", "--engine", "simulated",
                "--latency-ms", "3000", "--key-type", "ec"));
        StringBuilder log = new StringBuilder();
        try (SocketChannel flooder = SocketChannel.open()) {
            int port = ExampleServerProcessIT.awaitPort(p, log);
            long rssBefore = rssKb(p.pid());
            flooder.connect(new InetSocketAddress("127.0.0.1", port));
            FloodingPeer.writeFully(flooder, BadInputProcessIT.clientHello());
            // No wait for the operation to start: the ClientHello is the first record the server reads, so the
            // hold begins with the first read batch, and whatever that batch took of the flood counts against LIMIT.
            // flood for the whole 2 s (no stall rule): the kernel buffers must stop it
            long written = FloodingPeer.flood(flooder, 256L << 20, Duration.ofSeconds(2), Duration.ofSeconds(2));
            long rssAfter = rssKb(p.pid());
            System.out.printf("flood %s %s: client wrote %.1f MB in 2 s, server RSS %d -> %d MB%n", transport, notify,
                    written / 1048576.0, rssBefore / 1024, rssAfter / 1024);
            assertTrue(written < LIMIT, "the flooder got " + written + " bytes into a paused handshake");
            assertTrue(rssAfter - rssBefore < 64 * 1024, "server RSS grew from " + rssBefore + " kB to " + rssAfter
                    + " kB during the flood");

            String body = ExampleServerProcessIT.curl(port);
            assertTrue(body.startsWith("hello from netty-async-ctx over TLSv1.3"), body);
            assertTrue(FloodingPeer.awaitClosedByServer(flooder, Duration.ofSeconds(20)),
                    "the flooder's connection stayed open after its operation resumed");

            p.toHandle().destroy(); // SIGTERM
            assertTrue(p.waitFor(20, TimeUnit.SECONDS), "server did not stop on SIGTERM");
            String rest = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertEquals(0, p.exitValue(), "exit code after SIGTERM; output:\n" + log + rest);
        } finally {
            p.destroyForcibly();
        }
    }

    /** Resident set size of a process, from /proc. */
    static long rssKb(long pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IOException("no VmRSS in /proc/" + pid + "/status");
    }
}
