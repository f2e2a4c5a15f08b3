package io.asyncctx.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Session tickets shared across server processes: two JVMs ({@link TicketServerMain}) read the same ticket key file;
 * a ticket that openssl s_client got from the first resumes on the second with no key operation there (TLS 1.3 and
 * 1.2), a ticket of a key that is second in the file still resumes, and once its key is rotated out of the file the
 * second server refuses it (a full handshake, one key operation). Plus the file formats and their refusals.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class TlsTicketKeysTest {

    private static final SecureRandom RANDOM = new SecureRandom();

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"-tls1_3", "-tls1_2"})
    void shouldResumeATicketOfOneProcessOnAnotherWithoutAKeyOperationUntilItsKeyIsRotatedOut(String version)
            throws Exception {
        Path cert = dir.resolve("cert.pem");
        Path key = dir.resolve("key.pem");
        TlsFixtures.ProcessResult gen = TlsFixtures.run(List.of("openssl", "req", "-x509", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key.toString(), "-out", cert.toString(),
                "-days", "2", "-subj", "/CN=a.example.org"), null, 30);
        assertEquals(0, gen.exitCode(), gen.output());
        byte[] k1 = key48();
        byte[] k2 = key48();
        byte[] k3 = key48();
        Path tickets = dir.resolve("tickets.key");
        writeAtomically(tickets, k1, k2);
        try (ServerProcess a = new ServerProcess(cert, key, tickets);
             ServerProcess b = new ServerProcess(cert, key, tickets)) {
            Path session = dir.resolve("session.pem");
            String first = sClient(a.port, version, "-sess_out", session.toString());
            assertTrue(first.contains("New, TLS"), first);
            assertEquals(1, a.ops());

            String resumed = sClient(b.port, version, "-sess_in", session.toString());
            assertTrue(resumed.contains("Reused, TLS"), "B must resume A's ticket: " + resumed);
            assertEquals(0, b.ops(), "a resumed handshake needs no key operation");

            // The encrypting key moves second: A's ticket still decrypts on B.
            writeAtomically(tickets, k2, k1);
            assertTrue(b.command("reload").startsWith("RELOADED"));
            resumed = sClient(b.port, version, "-sess_in", session.toString());
            assertTrue(resumed.contains("Reused, TLS"), "a ticket of the second key resumes: " + resumed);
            assertEquals(0, b.ops());

            // A bad file is refused and the keys in use stay.
            Files.write(tickets.resolveSibling("bad"), new byte[80]);
            Files.move(tickets.resolveSibling("bad"), tickets, StandardCopyOption.ATOMIC_MOVE);
            String refused = b.command("reload");
            assertTrue(refused.startsWith("REFUSED") && refused.contains("80 bytes"), refused);
            resumed = sClient(b.port, version, "-sess_in", session.toString());
            assertTrue(resumed.contains("Reused, TLS"), "after a refused reload the old keys stay: " + resumed);

            // k1 rotated out: the ticket is refused, a full handshake with one key operation.
            writeAtomically(tickets, k3, k2);
            assertTrue(b.command("reload").startsWith("RELOADED"));
            String full = sClient(b.port, version, "-sess_in", session.toString());
            assertTrue(full.contains("New, TLS"), "a ticket whose key was rotated out must not resume: " + full);
            assertEquals(1, b.ops());
        }
    }

    @Test
    void shouldReadBase64LinesAndRawKeysAndRefuseWhatBoringSslCannotUse() throws Exception {
        byte[] k1 = key48();
        byte[] k2 = key48();
        Path text = dir.resolve("text");
        Files.writeString(text, "# first encrypts\n" + b64(k1) + "\n\n" + b64(k2) + "\n");
        TicketKeys keys = TicketKeys.read(text);
        assertEquals(2, keys.size());
        assertEquals(java.util.HexFormat.of().formatHex(k1, 0, 16), keys.names().get(0));

        Path raw = dir.resolve("raw");
        byte[] both = new byte[96];
        System.arraycopy(k2, 0, both, 0, 48);
        System.arraycopy(k1, 0, both, 48, 48);
        Files.write(raw, both);
        assertEquals(java.util.HexFormat.of().formatHex(k2, 0, 16), TicketKeys.read(raw).names().get(0));

        Path aes256 = dir.resolve("aes256");
        Files.writeString(aes256, b64(new byte[80]) + "\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TicketKeys.read(aes256));
        assertTrue(e.getMessage().contains("80 bytes (AES-256): not supported") && e.getMessage().contains(
                "openssl rand -base64 48"), e.getMessage());
        Path empty = dir.resolve("empty");
        Files.writeString(empty, "# nothing\n");
        e = assertThrows(IllegalArgumentException.class, () -> TicketKeys.read(empty));
        assertTrue(e.getMessage().contains("no ticket key"), e.getMessage());
        Path dup = dir.resolve("dup");
        Files.writeString(dup, b64(k1) + "\n" + b64(k1) + "\n");
        e = assertThrows(IllegalArgumentException.class, () -> TicketKeys.read(dup));
        assertTrue(e.getMessage().contains("same name"), e.getMessage());
        Path odd = dir.resolve("odd");
        Files.write(odd, new byte[] {1, 2, 3, (byte) 0xff});
        e = assertThrows(IllegalArgumentException.class, () -> TicketKeys.read(odd));
        assertTrue(e.getMessage().contains("4 bytes, expected 48"), e.getMessage());
    }

    private static byte[] key48() {
        byte[] k = new byte[48];
        RANDOM.nextBytes(k);
        return k;
    }

    private static String b64(byte[] k) {
        return Base64.getEncoder().encodeToString(k);
    }

    /** Writes the keys as base64 lines to a temporary file and renames it over {@code target}, as certbot does. */
    private static void writeAtomically(Path target, byte[]... keys) throws Exception {
        StringBuilder sb = new StringBuilder();
        for (byte[] k : keys) {
            sb.append(b64(k)).append('\n');
        }
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        Files.writeString(tmp, sb);
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
    }

    private static String sClient(int port, String version, String... extra) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + port,
                "-servername", "a.example.org", version, "-ign_eof"));
        cmd.addAll(List.of(extra));
        // The request makes s_client read until the server closes, so that TLS 1.3 tickets (sent after the handshake)
        // arrive before -sess_out writes the session.
        TlsFixtures.ProcessResult r = TlsFixtures.run(cmd, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                30);
        assertEquals(0, r.exitCode(), r.output());
        assertTrue(r.output().contains("HTTP/1.1 200 OK"), r.output());
        return r.output();
    }

    /** A {@link TicketServerMain} JVM. */
    private static final class ServerProcess implements AutoCloseable {
        final Process process;
        final BufferedReader out;
        final BufferedWriter in;
        final int port;

        ServerProcess(Path cert, Path key, Path tickets) throws Exception {
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            process = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                    "-Dio.netty.leakDetection.level=paranoid", TicketServerMain.class.getName(),
                    cert.toString(), key.toString(), tickets.toString())
                    .redirectError(ProcessBuilder.Redirect.INHERIT).start();
            out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
            in = new BufferedWriter(new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8));
            String line = out.readLine();
            if (line == null || !line.startsWith("PORT ")) {
                process.destroyForcibly();
                throw new AssertionError("server process did not start: " + line);
            }
            port = Integer.parseInt(line.substring(5).trim());
        }

        String command(String c) throws Exception {
            in.write(c + "\n");
            in.flush();
            String line = out.readLine();
            if (line == null) {
                throw new AssertionError("server process ended");
            }
            return line;
        }

        long ops() throws Exception {
            return Long.parseLong(command("ops").substring(4).trim());
        }

        @Override
        public void close() throws Exception {
            try {
                in.write("quit\n");
                in.flush();
            } catch (java.io.IOException e) {
                // already gone
            }
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new AssertionError("server process did not end within 30 s of quit");
            }
            assertEquals(0, process.exitValue());
        }
    }
}
