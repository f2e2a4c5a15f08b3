package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** A port that is taken gets one line naming it and exit code 2, like every other bad flag, on each transport. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PortInUseProcessIT {

    @ParameterizedTest
    @ValueSource(strings = {"epoll", "io_uring", "nio"})
    void shouldSayInOneLineThatThePortIsTaken(String transport) throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            int port = taken.getLocalPort();
            Process p = ServerJvm.start(List.of("server", "--port", String.valueOf(port),
                    "--transport", transport));
            try {
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the server did not exit");
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                assertEquals(2, p.exitValue(), out);
                List<String> lines = out.lines().filter(l -> !l.isBlank()).toList();
                assertTrue(lines.get(0).contains("--port " + port + ": 127.0.0.1:" + port + " is already in use"),
                        out);
                assertTrue(lines.size() <= 2, "no stack trace expected:\n" + out);
                assertTrue(out.lines().noneMatch(l -> l.startsWith("\tat ")), out);
            } finally {
                p.destroyForcibly();
            }
        }
    }
}
