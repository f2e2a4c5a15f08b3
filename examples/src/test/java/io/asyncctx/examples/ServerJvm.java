package io.asyncctx.examples;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The one place the process tests start a JVM of the example server: {@code java [flags] -jar
 * netty-async-ctx-examples.jar ARGS}, or {@code -cp JAR MAIN ARGS}, standard error merged into standard output.
 *
 * <p>Threading: any thread.
 */
final class ServerJvm {

    private ServerJvm() {
    }

    /** The shaded examples jar: {@code -Dexamples.jar} (set by failsafe), else {@code target/} of the module. */
    static String jar() {
        String jar = System.getProperty("examples.jar");
        return jar != null ? jar : Path.of("target", "netty-async-ctx-examples.jar").toAbsolutePath().toString();
    }

    /** Starts {@code java -jar JAR args}. */
    static Process start(List<String> args) throws IOException {
        return jar(List.of(), args).start();
    }

    /** {@code java jvmFlags -jar JAR args}, not started yet (the caller may add to its environment). */
    static ProcessBuilder jar(List<String> jvmFlags, List<String> args) {
        List<String> cmd = new ArrayList<>(java(jvmFlags));
        cmd.add("-jar");
        cmd.add(jar());
        cmd.addAll(args);
        return new ProcessBuilder(cmd).redirectErrorStream(true);
    }

    /** {@code java jvmFlags -cp JAR mainClass args}, not started yet. */
    static ProcessBuilder mainClass(List<String> jvmFlags, String mainClass, List<String> args) {
        List<String> cmd = new ArrayList<>(java(jvmFlags));
        cmd.addAll(List.of("-cp", jar(), mainClass));
        cmd.addAll(args);
        return new ProcessBuilder(cmd).redirectErrorStream(true);
    }

    private static List<String> java(List<String> jvmFlags) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(jvmFlags);
        return cmd;
    }
}
