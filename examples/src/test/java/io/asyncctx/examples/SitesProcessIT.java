package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The example server with {@code --site}, run as an operator runs it (the shaded jar, real peers): three names on one
 * port (RSA in software, P-256 on a SoftHSM2 token by pkcs11: URI, RSA and ECDSA side by side under a wildcard), each
 * answered with its own certificate by {@code openssl s_client -servername} and its key operations counted on its
 * site; then ten live rotations of the default site under h2load (alternately an atomic rename of new symlinks, as
 * certbot does, and new files behind the old links with SIGHUP), a corrupt file refused with the old pair serving,
 * and the server's threads and eventfds back once the old engines retire.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SitesProcessIT {

    private static final Path MODULE = Path.of("/usr/lib/softhsm/libsofthsm2.so");
    private static final Pattern LISTENING = Pattern.compile("listening on https://127\\.0\\.0\\.1:(\\d+)");
    private static final Pattern SLOT = Pattern.compile("reassigned to slot (\\d+)");
    private static final Pattern H2LOAD = Pattern.compile(
            "requests: (\\d+) total, \\d+ started, \\d+ done, (\\d+) succeeded, (\\d+) failed, (\\d+) errored");
    private static final String TOKEN = "sites-token";

    @TempDir
    static Path dir;

    private static Map<String, String> env;
    private static String hsmUri;

    @BeforeAll
    static void makeSitesAndToken() throws Exception {
        assumeTrue(Files.isReadable(MODULE) && onPath("softhsm2-util") && onPath("openssl") && onPath("h2load"),
                "SoftHSM2 (softhsm2-util, " + MODULE + "), openssl and h2load are needed");
        Path tokens = Files.createDirectory(dir.resolve("tokens"));
        Path conf = dir.resolve("softhsm2.conf");
        Files.writeString(conf, "directories.tokendir = " + tokens + "\nobjectstore.backend = file\n"
                + "log.level = ERROR\n");
        env = Map.of("SOFTHSM2_CONF", conf.toString());
        SecureRandom random = new SecureRandom();
        String pin = "pin-" + Long.toHexString(random.nextLong());
        Matcher m = SLOT.matcher(run("softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--so-pin",
                "so-" + Long.toHexString(random.nextLong()), "--pin", pin));
        assertTrue(m.find());
        Path pinFile = dir.resolve("pin");
        Files.writeString(pinFile, pin + "\n");
        Files.setPosixFilePermissions(pinFile, PosixFilePermissions.fromString("rw-------"));

        pair(dir.resolve("rsa"), "rsa.example.org", "rsa:2048");
        pair(dir.resolve("hsm"), "hsm.example.org", "ec");
        run("softhsm2-util", "--import", dir.resolve("hsm/key.pem").toString(), "--token", TOKEN, "--label",
                "hsm-key", "--id", "02", "--pin", pin);
        Files.delete(dir.resolve("hsm/key.pem")); // the key lives on the token only
        hsmUri = "pkcs11:token=" + TOKEN + ";object=hsm-key;type=private?module-path=" + MODULE
                + "&pin-source=file:" + pinFile;
        pair(dir.resolve("dual-rsa"), "rsa.dual.example.org", "rsa:2048");
        pair(dir.resolve("dual-ec"), "ec.dual.example.org", "ec");
    }

    @Test
    void shouldServeThreeNamesOnOnePortEachWithItsOwnCertificateAndOffloadedKey() throws Exception {
        Server s = Server.start(sites(dir.resolve("rsa/cert.pem"), dir.resolve("rsa/key.pem")));
        try {
            assertTrue(s.log().contains("sites rsa.example.org=software:rsa.example.org hsm.example.org=pkcs11:"
                    + "hsm.example.org *.dual.example.org="), s.log());
            assertEquals("rsa.example.org", served(s.port, "rsa.example.org", null).cn);
            assertEquals("hsm.example.org", served(s.port, "hsm.example.org", null).cn);
            assertEquals("rsa.example.org", served(s.port, "unknown.example.net", null).cn, "default site");
            assertEquals("rsa.example.org", served(s.port, null, null).cn, "no SNI: default site");
            assertEquals("ec.dual.example.org", served(s.port, "www.dual.example.org", "ECDSA+SHA256").cn);
            assertEquals("rsa.dual.example.org", served(s.port, "www.dual.example.org", "RSA-PSS+SHA256").cn);
            assertEquals("rsa.dual.example.org", served(s.port, "api.dual.example.org", "RSA-PSS+SHA256:RSA+SHA256")
                    .cn, "a client limited to RSA");

            String metrics = curl(s.port, "/metrics"); // no SNI (an IP address): one more on the default site
            assertEquals(4, metric(metrics, "asyncctx_site_operations_total", "rsa.example.org"), metrics);
            assertEquals(1, metric(metrics, "asyncctx_site_operations_total", "hsm.example.org"), metrics);
            assertEquals(3, metric(metrics, "asyncctx_site_operations_total", "*.dual.example.org"), metrics);
            for (String site : List.of("rsa.example.org", "hsm.example.org", "*.dual.example.org")) {
                assertEquals(0, metric(metrics, "asyncctx_site_operations_failed_total", site), metrics);
            }
            // every operation offloaded, each on the engine of the chosen key: jobs finished per engine, none inline
            assertEquals(4, sum(metrics, "asyncctx_jobs_finished_total", "software:rsa.example.org\""), metrics);
            assertEquals(1, sum(metrics, "asyncctx_jobs_finished_total", "pkcs11:hsm.example.org\""), metrics);
            assertEquals(2, sum(metrics, "asyncctx_jobs_finished_total", "software:*.dual.example.org\""), metrics);
            assertEquals(1, sum(metrics, "asyncctx_jobs_finished_total", "software:*.dual.example.org:2\""), metrics);
            assertEquals(0, sum(metrics, "asyncctx_operations_inline_total"), metrics);
            s.stop();
        } finally {
            s.kill();
        }
    }

    @Test
    void shouldRotateTheDefaultSiteTenTimesUnderLoadWithoutAFailure() throws Exception {
        Path live = Files.createDirectory(dir.resolve("live"));
        Path store = Files.createDirectory(dir.resolve("store"));
        List<String> serials = new ArrayList<>();
        for (int i = 0; i <= 10; i++) {
            pair(store.resolve("v" + i), "rsa.example.org", "rsa:2048");
            serials.add(serial(store.resolve("v" + i + "/cert.pem")));
        }
        link(live, store.resolve("v0"));
        Server s = Server.start(sites(live.resolve("cert.pem"), live.resolve("key.pem")));
        AtomicBoolean loading = new AtomicBoolean(true);
        CompletableFuture<long[]> load = null;
        try {
            assertEquals(serials.get(0), served(s.port, "rsa.example.org", null).serial);
            h2load(s.port); // warm: the loops' wait fds and threads exist before the baseline
            Map<String, Integer> threadsBefore = s.threads();
            long eventFdsBefore = s.eventFds();
            load = CompletableFuture.supplyAsync(() -> {
                long[] totals = new long[4]; // runs, requests, succeeded, failed+errored
                while (loading.get()) {
                    long[] r = h2load(s.port);
                    totals[0]++;
                    totals[1] += r[0];
                    totals[2] += r[1];
                    totals[3] += r[2];
                }
                return totals;
            }, ServerJvm.OWN_THREAD);
            Path current = store.resolve("v0");
            // A server started with SIGHUP ignored (this test run under nohup) says so and reloads on renames only.
            boolean sighup = !SiteReloadTest.sighupIgnoredByParent();
            assertEquals(!sighup, s.log().contains(SiteReloader.SIGHUP_IGNORED), s::log);
            for (int i = 1; i <= 10; i++) {
                Path next = store.resolve("v" + i);
                if (i % 2 == 1 || !sighup) {
                    link(live, next); // certbot: new links renamed over the old ones; the watch sees it
                    current = next;
                } else {
                    // new files behind the links, invisible to the watch of live/: only SIGHUP reloads them
                    replace(current.resolve("cert.pem"), next.resolve("cert.pem"));
                    replace(current.resolve("key.pem"), next.resolve("key.pem"));
                    run("kill", "-HUP", Long.toString(s.process.pid()));
                }
                String want = serials.get(i);
                int rotation = i;
                awaitCondition(() -> want.equals(served(s.port, "rsa.example.org", null).serial), 15,
                        () -> "rotation " + rotation + ": serial " + want + " not served; log:\n" + s.log());
            }
            // a corrupt certificate: refused with one line, the last pair keeps serving
            Path bad = Files.createDirectory(store.resolve("bad"));
            Files.writeString(bad.resolve("cert.pem"), "-----BEGIN CERTIFICATE-----\nnot a certificate\n"
                    + "-----END CERTIFICATE-----\n");
            Files.copy(current.resolve("key.pem"), bad.resolve("key.pem"));
            link(live, bad);
            awaitCondition(() -> s.log().contains("reload refused for site 'rsa.example.org'"), 15,
                    () -> "no refusal line; log:\n" + s.log());
            assertEquals(serials.get(10), served(s.port, "rsa.example.org", null).serial);

            loading.set(false);
            long[] totals = load.get(60, TimeUnit.SECONDS);
            assertTrue(totals[0] >= 10 && totals[1] > 0, "h2load runs " + totals[0] + ", requests " + totals[1]);
            assertEquals(totals[1], totals[2], "requests succeeded of " + totals[1]);
            assertEquals(0, totals[3], "failed or errored requests");
            String metrics = curl(s.port, "/metrics");
            assertEquals(0, sum(metrics, "server_handshakes_failed_total"), metrics);
            assertEquals(10, metric(metrics, "asyncctx_site_rotations_total", "rsa.example.org"), metrics);
            assertEquals(0, metric(metrics, "asyncctx_site_operations_failed_total", "rsa.example.org"), metrics);
            awaitCondition(() -> metric(curl(s.port, "/metrics"), "asyncctx_site_retiring", "rsa.example.org") == 0
                    && s.eventFds() == eventFdsBefore && appThreads(s.threads()) == appThreads(threadsBefore), 30,
                    () -> "after retirement: eventfds " + s.eventFds() + " (before " + eventFdsBefore + "), threads "
                    + s.threads() + " (before " + threadsBefore + ")");
            System.out.printf("rotation under load: %d h2load runs, %d requests, %d succeeded, 0 failed; %d "
                    + "handshake failures; threads %d and eventfds %d as at the start%n", totals[0], totals[1],
                    totals[2], sum(metrics, "server_handshakes_failed_total"), appThreads(threadsBefore),
                    eventFdsBefore);
            s.stop();
        } finally {
            loading.set(false);
            if (load != null) {
                load.cancel(true);
            }
            s.kill();
        }
    }

    // ---- the server process

    /** The flags of the three sites, the default one's files given. */
    private static List<String> sites(Path defaultCert, Path defaultKey) {
        return List.of("--site", "rsa.example.org," + defaultCert + "," + defaultKey,
                "--site", "hsm.example.org," + dir.resolve("hsm/cert.pem") + "," + hsmUri,
                "--site", "*.dual.example.org," + dir.resolve("dual-rsa/cert.pem") + "," + dir.resolve("dual-rsa/key.pem")
                        + "," + dir.resolve("dual-ec/cert.pem") + "," + dir.resolve("dual-ec/key.pem"));
    }

    private record Server(Process process, int port, ConcurrentLinkedQueue<String> lines) {

        static Server start(List<String> siteFlags) throws IOException {
            List<String> args = new ArrayList<>(List.of("server", "--port", "0", "--workers", "1"));
            args.addAll(siteFlags);
            ProcessBuilder pb = ServerJvm.jar(List.of("-XX:-UseDynamicNumberOfCompilerThreads",
                    "-XX:-UseDynamicNumberOfGCThreads"), args);
            pb.environment().putAll(env);
            Process p = pb.start();
            ConcurrentLinkedQueue<String> lines = new ConcurrentLinkedQueue<>();
            CompletableFuture<Integer> port = new CompletableFuture<>();
            Thread reader = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(),
                        StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = r.readLine()) != null) {
                        lines.add(line);
                        Matcher m = LISTENING.matcher(line);
                        if (m.find()) {
                            port.complete(Integer.parseInt(m.group(1)));
                        }
                    }
                } catch (IOException e) {
                    // the process ended
                }
                port.completeExceptionally(new AssertionError("server exited before listening:\n"
                        + String.join("\n", lines)));
            }, "server-output");
            reader.setDaemon(true);
            reader.start();
            try {
                return new Server(p, port.get(60, TimeUnit.SECONDS), lines);
            } catch (Exception e) {
                p.destroyForcibly();
                throw new AssertionError("server did not listen:\n" + String.join("\n", lines), e);
            }
        }

        String log() {
            return String.join("\n", lines);
        }

        /** Thread names (from /proc/PID/task/N/comm) and how many of each. */
        Map<String, Integer> threads() {
            Map<String, Integer> out = new HashMap<>();
            try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(process.pid()), "task"))) {
                tasks.forEach(t -> {
                    try {
                        out.merge(Files.readString(t.resolve("comm")).trim(), 1, Integer::sum);
                    } catch (IOException e) {
                        // the thread ended while listed
                    }
                });
            } catch (IOException e) {
                throw new AssertionError(e);
            }
            return out;
        }

        long eventFds() {
            try (Stream<Path> fds = Files.list(Path.of("/proc", Long.toString(process.pid()), "fd"))) {
                return fds.filter(f -> {
                    try {
                        return Files.readSymbolicLink(f).toString().contains("eventfd");
                    } catch (IOException e) {
                        return false;
                    }
                }).count();
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        }

        void stop() throws InterruptedException {
            process.toHandle().destroy(); // SIGTERM
            assertTrue(process.waitFor(30, TimeUnit.SECONDS), "server did not stop on SIGTERM");
            awaitCondition(() -> log().contains("stopped"), 5, this::log);
            assertEquals(0, process.exitValue(), log());
        }

        void kill() {
            process.destroyForcibly();
        }
    }

    /**
     * Threads of the server's own making: the JVM's transient helpers (a signal's handler thread, compiler and GC
     * threads, the common pool) are left out.
     */
    private static int appThreads(Map<String, Integer> threads) {
        return threads.entrySet().stream().filter(e -> !e.getKey().startsWith("SIGHUP")
                && !e.getKey().startsWith("C1 ") && !e.getKey().startsWith("C2 ") && !e.getKey().startsWith("GC ")
                && !e.getKey().startsWith("ForkJoinPool") && !e.getKey().startsWith("Attach"))
                .mapToInt(Map.Entry::getValue).sum();
    }

    // ---- peers

    private record Served(String cn, String serial) {
    }

    /** One full handshake by openssl s_client; the served certificate's CN and serial. */
    private static Served served(int port, String serverName, String sigalgs) {
        try {
            List<String> cmd = new ArrayList<>(List.of("openssl", "s_client", "-connect", "127.0.0.1:" + port));
            if (serverName == null) {
                cmd.add("-noservername");
            } else {
                cmd.addAll(List.of("-servername", serverName));
            }
            if (sigalgs != null) {
                cmd.addAll(List.of("-sigalgs", sigalgs));
            }
            String out = exec(cmd, "");
            int b = out.indexOf("-----BEGIN CERTIFICATE-----");
            int e = out.indexOf("-----END CERTIFICATE-----");
            assertTrue(b >= 0 && e > b, "no certificate from s_client:\n" + out);
            String x = exec(List.of("openssl", "x509", "-noout", "-serial", "-subject", "-nameopt", "RFC2253"),
                    out.substring(b, e + 25) + "\n");
            Matcher cn = Pattern.compile("subject=CN=(\\S+)").matcher(x);
            Matcher serial = Pattern.compile("serial=(\\p{XDigit}+)").matcher(x);
            assertTrue(cn.find() && serial.find(), x);
            return new Served(cn.group(1), serial.group(1).toLowerCase());
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /** One bounded h2load run (4 connections, so 4 full handshakes, 40 requests): requests, succeeded, failed. */
    private static long[] h2load(int port) {
        try {
            String out = exec(List.of("h2load", "-n", "40", "-c", "4", "-m", "2", "https://127.0.0.1:" + port + "/"),
                    "");
            Matcher m = H2LOAD.matcher(out);
            assertTrue(m.find(), out);
            return new long[] {Long.parseLong(m.group(1)), Long.parseLong(m.group(2)),
                Long.parseLong(m.group(3)) + Long.parseLong(m.group(4))};
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static String curl(int port, String path) {
        try {
            return exec(List.of("curl", "-sS", "-k", "--max-time", "20", "https://127.0.0.1:" + port + path), "");
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static long metric(String metrics, String name, String site) {
        Matcher m = Pattern.compile("^" + Pattern.quote(name + "{site=\"" + site + "\"}") + " (\\d+)",
                Pattern.MULTILINE).matcher(metrics);
        assertTrue(m.find(), name + " of " + site + " missing:\n" + metrics);
        return Long.parseLong(m.group(1));
    }

    private static long sum(String metrics, String name) {
        return sum(metrics, name, "");
    }

    /** The sum of {@code name}'s samples whose labels contain {@code labels}. */
    private static long sum(String metrics, String name, String labels) {
        Matcher m = Pattern.compile("^" + Pattern.quote(name) + "(\\{[^}]*\\})? ([0-9.E+]+)", Pattern.MULTILINE)
                .matcher(metrics);
        double total = 0;
        boolean any = false;
        while (m.find()) {
            if (!(m.group(1) == null ? "" : m.group(1)).contains(labels)) {
                continue;
            }
            total += Double.parseDouble(m.group(2));
            any = true;
        }
        assertTrue(any, name + " missing:\n" + metrics);
        return Math.round(total);
    }

    // ---- files

    /** A self-signed pair for {@code cn} in {@code d}: cert.pem, key.pem ({@code rsa:2048} or {@code ec} P-256). */
    private static void pair(Path d, String cn, String type) throws Exception {
        Files.createDirectories(d);
        List<String> cmd = new ArrayList<>(List.of("openssl", "req", "-x509", "-nodes", "-days", "2", "-subj",
                "/CN=" + cn, "-keyout", d.resolve("key.pem").toString(), "-out", d.resolve("cert.pem").toString()));
        cmd.addAll(type.equals("ec") ? List.of("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")
                : List.of("-newkey", type));
        run(cmd.toArray(String[]::new));
    }

    private static String serial(Path cert) throws Exception {
        String x = run("openssl", "x509", "-noout", "-serial", "-in", cert.toString());
        return x.substring(x.indexOf('=') + 1).trim().toLowerCase();
    }

    /** Points live/cert.pem and live/key.pem at {@code version}'s files by renaming new links over them. */
    private static void link(Path live, Path version) throws IOException {
        for (String f : List.of("cert.pem", "key.pem")) {
            Path tmp = live.resolve("." + f + ".tmp");
            Files.deleteIfExists(tmp);
            Files.createSymbolicLink(tmp, version.resolve(f));
            Files.move(tmp, live.resolve(f), StandardCopyOption.ATOMIC_MOVE);
        }
    }

    /** Replaces {@code target} (behind a link) by {@code source}'s content, by a rename in its own directory. */
    private static void replace(Path target, Path source) throws IOException {
        Path tmp = target.resolveSibling(target.getFileName() + ".new");
        Files.copy(source, tmp, StandardCopyOption.REPLACE_EXISTING);
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
    }

    // ---- helpers

    private static void awaitCondition(BooleanSupplier done, long seconds, java.util.function.Supplier<String> why)
            throws InterruptedException {
        io.asyncctx.testkit.Await.until(why, java.time.Duration.ofSeconds(seconds), done);
    }

    private static String exec(List<String> cmd, String stdin) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        Process p = pb.start();
        p.getOutputStream().write(stdin.getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "timed out: " + cmd);
        return out;
    }

    private static String run(String... command) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().putAll(env == null ? Map.of() : env);
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
