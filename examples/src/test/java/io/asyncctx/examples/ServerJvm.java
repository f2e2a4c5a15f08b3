package io.asyncctx.examples;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The one place the process tests start a JVM of the example server: {@code java START-UP-FLAGS [flags] -jar
 * netty-async-ctx-examples.jar ARGS}, or {@code -cp JAR MAIN ARGS}, standard error merged into standard output.
 *
 * <p>The start-up flags, the same for every server, make the JVM start sooner and change nothing the tests look at:
 * <ul>
 *   <li>{@code -XX:SharedArchiveFile=target/it-server.jsa}: an AppCDS archive of the classes a server loads, made once
 *       per test JVM by a training run (a server on port 0 with the generated key, as most tests start it; curl asks
 *       for {@code /} and {@code /metrics}; SIGTERM; the JVM writes the archive as it exits,
 *       {@code -XX:ArchiveClassesAtExit}; its output in {@code target/it-server-training.log}), then checked with
 *       {@code -Xshare:on}. If it cannot be made, one line on standard output says why and the servers start without
 *       it.
 *   <li>{@code -Xlog:cds=off,cds+dynamic=off} with it: a JVM that cannot map the archive says so on standard output
 *       (its own, which the tests read) and starts without it; tests that check the server's exact output must not see
 *       that line.
 * </ul>
 * {@code -Dexamples.it.cds=false} leaves it out, to compare.
 *
 * <p>Threading: any thread. The first start makes the archive; starts on other threads meanwhile wait for it.
 */
final class ServerJvm {

    private static final Pattern LISTENING = Pattern.compile("listening on https://127\\.0\\.0\\.1:(\\d+)");

    /** The AppCDS flags once the archive is made (none if it could not be); guarded by the class. */
    private static List<String> archiveFlags;

    /**
     * Runs each task on a daemon thread of its own. For tasks that block for a process's life (reading its output):
     * on the common pool (one thread on a 2-core machine) a second such task waits for the first to end, and a test
     * that reads two servers at once times out (OperatorProcessIT did on Temurin 25).
     */
    static final java.util.concurrent.Executor OWN_THREAD = task -> {
        Thread t = new Thread(task, "it-process-output");
        t.setDaemon(true);
        t.start();
    };

    private ServerJvm() {
    }

    /** The shaded examples jar: {@code -Dexamples.jar} (set by failsafe), else {@code target/} of the module. */
    static String jar() {
        String jar = System.getProperty("examples.jar");
        return jar != null ? jar : Path.of("target", "netty-async-ctx-examples.jar").toAbsolutePath().toString();
    }

    /** Starts {@code java START-UP-FLAGS -jar JAR args}. */
    static Process start(List<String> args) throws IOException {
        return jar(List.of(), args).start();
    }

    /** {@code java START-UP-FLAGS jvmFlags -jar JAR args}, not started yet (the caller may add to its environment). */
    static ProcessBuilder jar(List<String> jvmFlags, List<String> args) {
        List<String> cmd = new ArrayList<>(java(jvmFlags));
        cmd.add("-jar");
        cmd.add(jar());
        cmd.addAll(args);
        return new ProcessBuilder(cmd).redirectErrorStream(true);
    }

    /** {@code java START-UP-FLAGS jvmFlags -cp JAR mainClass args}, not started yet. */
    static ProcessBuilder mainClass(List<String> jvmFlags, String mainClass, List<String> args) {
        List<String> cmd = new ArrayList<>(java(jvmFlags));
        cmd.addAll(List.of("-cp", jar(), mainClass));
        cmd.addAll(args);
        return new ProcessBuilder(cmd).redirectErrorStream(true);
    }

    private static List<String> java(List<String> jvmFlags) {
        List<String> cmd = new ArrayList<>();
        cmd.add(javaBin());
        cmd.addAll(archiveFlags());
        cmd.addAll(jvmFlags);
        return cmd;
    }

    private static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /**
     * The archive's flags, made on first use; starts on other threads meanwhile wait for it. (Not a holder class: the
     * training's reader thread would wait for the class initialization that waits for it.)
     */
    private static synchronized List<String> archiveFlags() {
        if (archiveFlags == null) {
            archiveFlags = makeArchive();
        }
        return archiveFlags;
    }

    private static List<String> makeArchive() {
        if (!Boolean.parseBoolean(System.getProperty("examples.it.cds", "true"))) {
            System.out.println("ServerJvm: no AppCDS archive (-Dexamples.it.cds=false)");
            return List.of();
        }
        Path jsa = Path.of(jar()).toAbsolutePath().resolveSibling("it-server.jsa");
        long start = System.nanoTime();
        String why;
        try {
            why = train(jsa);
            if (why == null) {
                why = check(jsa);
            }
        } catch (IOException | RuntimeException e) {
            why = e.toString();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            why = "interrupted";
        }
        if (why == null) {
            System.out.printf("ServerJvm: AppCDS archive %s made and checked in %d ms%n", jsa,
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
            return List.of("-XX:SharedArchiveFile=" + jsa, "-Xlog:cds=off,cds+dynamic=off");
        }
        System.out.println("ServerJvm: no AppCDS archive, the servers start without one: " + why);
        try {
            Files.deleteIfExists(jsa);
        } catch (IOException e) {
            // no archive is used either way
        }
        return List.of();
    }

    /** The training run; null when it wrote the archive, else why not (its output in it-server-training.log). */
    private static String train(Path jsa) throws IOException, InterruptedException {
        Files.deleteIfExists(jsa);
        Path log = jsa.resolveSibling("it-server-training.log");
        List<String> cmd = new ArrayList<>(List.of(javaBin(), "-XX:ArchiveClassesAtExit=" + jsa));
        cmd.addAll(List.of("-jar", jar(), "server", "--port", "0", "--workers", "1"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            StringBuffer out = new StringBuffer();
            CompletableFuture<Integer> port = new CompletableFuture<>();
            Thread reader = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(),
                        StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null; ) {
                        out.append(line).append('\n');
                        Matcher m = LISTENING.matcher(line);
                        if (m.find()) {
                            port.complete(Integer.parseInt(m.group(1)));
                        }
                    }
                } catch (IOException e) {
                    // the process ended
                }
                port.complete(-1);
            }, "it-server-training-output");
            reader.setDaemon(true);
            reader.start();
            int listening;
            try {
                listening = port.get(120, TimeUnit.SECONDS);
            } catch (TimeoutException | ExecutionException e) {
                return "the training server did not listen within 120 s";
            }
            if (listening < 0) {
                p.waitFor(10, TimeUnit.SECONDS);
                Files.writeString(log, out);
                return "the training server exited before listening (output in " + log + ")";
            }
            Process curl = new ProcessBuilder("curl", "-sSk", "--max-time", "20", "-o", "/dev/null",
                    "https://127.0.0.1:" + listening + "/", "https://127.0.0.1:" + listening + "/metrics")
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (!curl.waitFor(30, TimeUnit.SECONDS)) {
                curl.destroyForcibly();
            }
            p.toHandle().destroy(); // SIGTERM: the JVM writes the archive as it exits
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                return "the training server did not exit within 120 s of SIGTERM";
            }
            reader.join(10_000);
            Files.writeString(log, out);
            if (p.exitValue() != 0) {
                return "the training server exited with " + p.exitValue() + " (output in " + log + ")";
            }
            if (!Files.isRegularFile(jsa) || Files.size(jsa) == 0) {
                return "the training server wrote no " + jsa + " (output in " + log + ")";
            }
            return null;
        } finally {
            p.destroyForcibly();
        }
    }

    /** Null when a JVM maps the archive ({@code -Xshare:on} fails otherwise) and prints only its own output. */
    private static String check(Path jsa) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(javaBin(), "-Xshare:on", "-XX:SharedArchiveFile=" + jsa,
                "-Xlog:cds=off,cds+dynamic=off"));
        cmd.addAll(List.of("-jar", jar(), "-V"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> {
                try {
                    return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                } catch (IOException e) {
                    return e.toString();
                }
            }, OWN_THREAD);
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                return "a JVM with the archive did not print its version within 60 s";
            }
            String text = out.get(10, TimeUnit.SECONDS);
            if (p.exitValue() != 0 || !text.startsWith("netty-async-ctx ")) {
                return "a JVM with the archive (-Xshare:on) exited with " + p.exitValue() + ": "
                        + text.lines().findFirst().orElse("no output");
            }
            return null;
        } catch (ExecutionException | TimeoutException e) {
            return "a JVM with the archive: " + e;
        } finally {
            p.destroyForcibly();
        }
    }
}
