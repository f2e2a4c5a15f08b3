package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The example server jar with {@code --engine simulated} and {@code --engine pkcs11}, as a user runs it: for pkcs11 a
 * SoftHSM2 token is created the way the README says (softhsm2-util, openssl, pkcs11-tool; SOFTHSM2_CONF in the
 * environment of every child process, the server included), then curl verifies the served certificate against the
 * one stored on the token. SIGTERM ends the server with exit code 0. Bad pkcs11 flags print the engine's message and
 * exit non-zero.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class EngineFlagsProcessIT {

    private static final Path MODULE = Path.of("/usr/lib/softhsm/libsofthsm2.so");
    private static final Pattern LISTENING = Pattern.compile("listening on https://127\\.0\\.0\\.1:(\\d+)");
    private static final Pattern SLOT = Pattern.compile("reassigned to slot (\\d+)");
    private static final String TOKEN = "example-token";
    private static final String KEY = "tls-key";

    @TempDir
    static Path dir;

    private static Map<String, String> env;
    private static String pin;
    private static long slot;
    private static Path pinFile;
    private static Path certPem;

    @BeforeAll
    static void createToken() throws Exception {
        boolean available = Files.isReadable(MODULE) && onPath("softhsm2-util") && onPath("pkcs11-tool")
                && onPath("openssl");
        String needed = "SoftHSM2 (softhsm2-util, " + MODULE + "), pkcs11-tool and openssl are needed";
        if (!available && "true".equalsIgnoreCase(System.getenv("CI"))) {
            throw new AssertionError("CI=true but the token software is missing: " + needed + "; .ci/run installs it");
        }
        assumeTrue(available, needed);
        Path tokens = Files.createDirectory(dir.resolve("tokens"));
        Path conf = dir.resolve("softhsm2.conf");
        Files.writeString(conf, "directories.tokendir = " + tokens + "\nobjectstore.backend = file\n"
                + "log.level = ERROR\n");
        env = Map.of("SOFTHSM2_CONF", conf.toString());
        SecureRandom random = new SecureRandom();
        pin = "pin-" + Long.toHexString(random.nextLong());
        String soPin = "so-" + Long.toHexString(random.nextLong());
        String init = run("softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--so-pin", soPin,
                "--pin", pin);
        Matcher m = SLOT.matcher(init);
        assertTrue(m.find(), init);
        slot = Long.parseLong(m.group(1));
        Path keyPem = dir.resolve("key.pem");
        certPem = dir.resolve("cert.pem");
        Path certDer = dir.resolve("cert.der");
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPem.toString(),
                "-out", certPem.toString(), "-days", "30", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1");
        run("softhsm2-util", "--import", keyPem.toString(), "--token", TOKEN, "--label", KEY, "--id", "01",
                "--pin", pin);
        run("openssl", "x509", "-in", certPem.toString(), "-outform", "DER", "-out", certDer.toString());
        run("pkcs11-tool", "--module", MODULE.toString(), "--token-label", TOKEN, "--login", "--pin", pin,
                "--write-object", certDer.toString(), "--type", "cert", "--id", "01", "--label", KEY);
        Files.delete(keyPem); // the only copy of the key is on the token now
        pinFile = dir.resolve("pin");
        Files.writeString(pinFile, pin + "\n");
        Files.setPosixFilePermissions(pinFile, PosixFilePermissions.fromString("rw-------"));
    }

    @Test
    void shouldServeThroughTheSimulatedAcceleratorAndExitZeroOnSigterm() throws Exception {
        Process p = start(List.of("server", "--port", "0", "--engine", "simulated", "--latency-ms", "20",
                "--ring-size", "8", "--fd-mode", "per-ctx", "--workers", "1", "--handshake-steps-per-turn", "1"),
                Map.of());
        StringBuilder log = new StringBuilder();
        try {
            int port = awaitPort(p, log);
            assertTrue(log.toString().contains("engine simulated"), log.toString());
            String body = curl("-k", "https://127.0.0.1:" + port + "/");
            assertTrue(body.startsWith("hello from netty-async-ctx over TLSv1.3"), body);
            stopAndExpectZero(p, log);
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void shouldServeChromiumOverHttp3WithTheKeyOnTheToken() throws Exception {
        // The QUIC handshakes' signatures go to the token too: Chromium fetches over HTTP/3, /metrics counts them.
        Process p = start(List.of("server", "--port", "0", "--http3", "--key", "pkcs11:token=" + TOKEN + ";object="
                + KEY + ";type=private?module-path=" + MODULE + "&pin-source=file:" + pinFile), env);
        StringBuilder log = new StringBuilder();
        try {
            int port = awaitPort(p, log);
            ByteArrayOutputStream rest = new ByteArrayOutputStream();
            Thread drain = new Thread(() -> {
                try {
                    p.getInputStream().transferTo(rest);
                } catch (java.io.IOException ignored) {
                    // the server ended
                }
            });
            drain.setDaemon(true);
            drain.start();
            String page = Http3ChromiumProcessIT.chromium(Files.createDirectory(dir.resolve("chromium-pkcs11")), port,
                    Http3ChromiumProcessIT.spki(certPem));
            assertTrue(page.contains("over HTTP/3 (QUIC) TLS_"), "Chromium's page: " + page);
            assertTrue(page.contains("key operation offloaded: yes"), "Chromium's page: " + page);
            String metrics = curl("-k", "https://127.0.0.1:" + port + "/metrics");
            double quicJobs = Http3ChromiumProcessIT.counter(metrics, "asyncctx_jobs_finished_total",
                    "protocol=\"quic\"");
            assertTrue(quicJobs >= 1, "QUIC jobs finished on the token's engine: " + quicJobs + "\n" + metrics);
            assertTrue(Http3ChromiumProcessIT.counter(metrics, "asyncctx_jobs_finished_total", "engine=\"pkcs11")
                    >= quicJobs, metrics);
            p.toHandle().destroy(); // SIGTERM
            assertTrue(p.waitFor(20, TimeUnit.SECONDS), "server did not stop on SIGTERM");
            drain.join(5_000);
            log.append(rest.toString(StandardCharsets.UTF_8));
            assertEquals(0, p.exitValue(), "exit code after SIGTERM; output:\n" + log);
            assertTrue(log.toString().contains("stopped"), log.toString());
        } finally {
            p.destroyForcibly();
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"--pkcs11-token, --pkcs11-pin-file", "--pkcs11-slot, --pkcs11-pin-env", "uri, uri"})
    void shouldServeWithTheKeyOnTheTokenAndExitZeroOnSigterm(String tokenFlag, String pinFlag) throws Exception {
        List<String> args = new ArrayList<>(List.of("server", "--port", "0"));
        Map<String, String> extraEnv = new HashMap<>(env);
        if (tokenFlag.equals("uri")) {
            // A PKCS#11 URI in --key implies --engine pkcs11 and carries the module and the PIN file.
            args.addAll(List.of("--key", "pkcs11:token=" + TOKEN + ";object=" + KEY + ";type=private?module-path="
                    + MODULE + "&pin-source=file:" + pinFile));
        } else {
            args.addAll(List.of("--engine", "pkcs11", "--pkcs11-library", MODULE.toString(), "--pkcs11-key-label",
                    KEY));
            args.addAll(tokenFlag.equals("--pkcs11-token") ? List.of(tokenFlag, TOKEN)
                    : List.of(tokenFlag, Long.toString(slot)));
        }
        if (pinFlag.equals("uri")) {
            // in the URI
        } else if (pinFlag.equals("--pkcs11-pin-file")) {
            args.addAll(List.of(pinFlag, pinFile.toString()));
        } else {
            args.addAll(List.of(pinFlag, "EXAMPLE_TOKEN_PIN"));
            extraEnv.put("EXAMPLE_TOKEN_PIN", pin);
        }
        Process p = start(args, extraEnv);
        StringBuilder log = new StringBuilder();
        try {
            int port = awaitPort(p, log);
            assertTrue(log.toString().contains("engine pkcs11"), log.toString());
            // The certificate generated for the token's key must verify: the chain was read from the token.
            String body = curl("--cacert", certPem.toString(), "--resolve", "localhost:" + port + ":127.0.0.1",
                    "https://localhost:" + port + "/");
            assertTrue(body.startsWith("hello from netty-async-ctx over TLSv1.3"), body);
            String tls12 = curl("-k", "--tls-max", "1.2", "https://127.0.0.1:" + port + "/");
            assertTrue(tls12.startsWith("hello from netty-async-ctx over TLSv1.2 TLS_ECDHE_RSA_"), tls12);
            stopAndExpectZero(p, log);
        } finally {
            p.destroyForcibly();
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "--pkcs11-library /nonexistent/libpkcs11.so|PKCS#11 module library not found or not readable: "
            + "/nonexistent/libpkcs11.so",
        "--pkcs11-pin-file WRONG_PIN_FILE|wrong PIN for the token token='example-token'",
        "--pkcs11-pin-file OPEN_PIN_FILE|run: chmod 600",
        "--pkcs11-pin-file /nonexistent/pin|cannot read the PIN file /nonexistent/pin",
        "--pkcs11-token no-such-token|no token matching token='no-such-token'",
        "--pkcs11-key-label no-such-key|no private key labelled 'no-such-key'",
        "--mode inline|--mode inline needs the private key in memory",
        "--pkcs11-pin 1234|a PIN on the command line is visible",
        "--key KEY_FILE|the private key stays on the token"
    })
    void shouldExplainBadPkcs11FlagsAndExitNonZero(String flags, String expected) throws Exception {
        Path wrongPin = dir.resolve("wrong-pin");
        Files.writeString(wrongPin, "0" + pin + "\n");
        Files.setPosixFilePermissions(wrongPin, PosixFilePermissions.fromString("rw-------"));
        Path openPin = dir.resolve("open-pin");
        Files.writeString(openPin, pin + "\n");
        Files.setPosixFilePermissions(openPin, PosixFilePermissions.fromString("rw-r--r--"));
        Map<String, String> good = new HashMap<>(Map.of("--pkcs11-library", MODULE.toString(), "--pkcs11-token", TOKEN,
                "--pkcs11-pin-file", pinFile.toString(), "--pkcs11-key-label", KEY));
        List<String> extra = new ArrayList<>();
        String[] f = flags.split(" ");
        String value = f[1].replace("WRONG_PIN_FILE", wrongPin.toString())
                .replace("OPEN_PIN_FILE", openPin.toString()).replace("KEY_FILE", pinFile.toString());
        if (good.containsKey(f[0])) {
            good.put(f[0], value);
        } else {
            extra.addAll(List.of(f[0], value));
        }
        List<String> args = new ArrayList<>(List.of("server", "--port", "0", "--engine", "pkcs11"));
        good.forEach((k, v) -> args.addAll(List.of(k, v)));
        args.addAll(extra);
        Process p = start(args, env);
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            assertNotEquals(0, p.exitValue(), out);
            assertTrue(out.contains(expected), "expected '" + expected + "' in:\n" + out);
            assertTrue(!out.contains("listening on"), out);
            assertTrue(!out.contains(pin), "the PIN must never be printed:\n" + out);
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void shouldPointAtSoftHsm2ConfWhenTheModuleSeesNoToken() throws Exception {
        // A SoftHSM2 configuration whose token directory is empty: what a shell without the README's SOFTHSM2_CONF
        // export sees when the token was made under another configuration.
        Path empty = Files.createDirectory(dir.resolve("no-tokens"));
        Path conf = dir.resolve("empty-softhsm2.conf");
        Files.writeString(conf, "directories.tokendir = " + empty + "\nobjectstore.backend = file\nlog.level = ERROR\n");
        Process p = start(List.of("server", "--port", "0", "--engine", "pkcs11", "--pkcs11-library",
                MODULE.toString(), "--pkcs11-token", TOKEN, "--pkcs11-pin-file", pinFile.toString(),
                "--pkcs11-key-label", KEY), Map.of("SOFTHSM2_CONF", conf.toString()));
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            assertNotEquals(0, p.exitValue(), out);
            assertTrue(out.contains("tokens found: []") && out.contains("set SOFTHSM2_CONF"), out);
        } finally {
            p.destroyForcibly();
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "--engine pkcs11|--engine pkcs11 needs --pkcs11-library PATH",
        "--engine pkcs11 --pkcs11-library /usr/lib/softhsm/libsofthsm2.so --pkcs11-key-label k|exactly one of "
            + "--pkcs11-token LABEL and --pkcs11-slot N",
        "--engine software --pkcs11-token t|--pkcs11-* flags configure --engine pkcs11",
        "--engine software --latency-ms 5|--latency-ms and --ring-size configure --engine simulated",
        "--engine simulated --ring-size 0|--ring-size 0: expected at least 1",
        "--engine simulated --fd-mode many|--fd-mode many: expected shared or per-ctx",
        "--handshake-steps-per-turn -1|--handshake-steps-per-turn -1: expected 0 (no bound) or more",
        "--mode inline --handshake-steps-per-turn 1|--handshake-steps-per-turn bounds offloaded handshakes only; "
            + "--mode inline signs on the event loop",
        "--mode blocking --handshake-steps-per-turn 2|--handshake-steps-per-turn bounds offloaded handshakes only; "
            + "--mode blocking signs on the event loop"
    })
    void shouldExplainMissingOrMisplacedEngineFlags(String flags, String expected) throws Exception {
        List<String> args = new ArrayList<>(List.of("server", "--port", "0"));
        args.addAll(Arrays.asList(flags.split(" ")));
        Process p = start(args, Map.of());
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            assertNotEquals(0, p.exitValue(), out);
            assertTrue(out.contains(expected), "expected '" + expected + "' in:\n" + out);
        } finally {
            p.destroyForcibly();
        }
    }

    private static void stopAndExpectZero(Process p, StringBuilder log) throws Exception {
        p.toHandle().destroy(); // SIGTERM
        assertTrue(p.waitFor(20, TimeUnit.SECONDS), "server did not stop on SIGTERM");
        log.append(new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
        assertEquals(0, p.exitValue(), "exit code after SIGTERM; output:\n" + log);
        assertTrue(log.toString().contains("stopped"), log.toString());
    }

    private static Process start(List<String> args, Map<String, String> extraEnv) throws IOException {
        ProcessBuilder pb = ServerJvm.jar(List.of(), args);
        pb.environment().putAll(extraEnv);
        return pb.start();
    }

    private static int awaitPort(Process p, StringBuilder log) throws IOException {
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line;
        while ((line = r.readLine()) != null) {
            log.append(line).append('\n');
            Matcher m = LISTENING.matcher(line);
            if (m.find()) {
                return Integer.parseInt(m.group(1));
            }
        }
        throw new AssertionError("server exited before listening:\n" + log);
    }

    private static String curl(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("curl", "-sS", "--max-time", "20"));
        cmd.addAll(List.of(args));
        Process c = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        c.getInputStream().transferTo(out);
        assertTrue(c.waitFor(30, TimeUnit.SECONDS));
        return out.toString(StandardCharsets.UTF_8);
    }

    /** Runs a setup command with SOFTHSM2_CONF set; fails the test with its output when it fails. */
    private static String run(String... command) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "timed out: " + String.join(" ", command));
        assertEquals(0, p.exitValue(), String.join(" ", command) + "\n" + out);
        return out;
    }

    private static boolean onPath(String tool) {
        return Stream.of(System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":"))
                .anyMatch(d -> Files.isExecutable(Path.of(d, tool)));
    }
}
