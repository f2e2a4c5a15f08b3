package io.asyncctx.frameworks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.asyncctx.engine.SoftwareEngine;
import io.netty.pkitesting.CertificateBuilder;
import io.netty.pkitesting.X509Bundle;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * What a Vert.x user sees who imports Vert.x 5.0.7's stack BOM without pinning netty-tcnative-classes: a child JVM
 * with this module's test class path, its netty-tcnative-classes 2.0.84 swapped for the BOM's 2.0.74 beside the 2.0.84
 * native, builds a context; the builder's refusal names both versions (and a control run with the class path as it
 * is builds).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class MixedTcnativeTest {

    /** The child: builds a context and prints "built" or the refusal. */
    public static void main(String[] args) throws Exception {
        X509Bundle cert = ExampleTls.selfSigned("localhost", CertificateBuilder.Algorithm.ecp256);
        try (SoftwareEngine engine = ExampleTls.engine(cert)) {
            ExampleTls.context(engine, cert);
            System.out.println("built");
        } catch (RuntimeException | javax.net.ssl.SSLException e) {
            System.out.println("refused: " + e.getMessage());
        }
    }

    private static List<String> classPath() {
        String cp = System.getProperty("framework.test.classpath");
        assertTrue(cp != null && cp.contains("netty-tcnative-classes-2.0.84.Final.jar"),
                "run through Maven (surefire sets framework.test.classpath): " + cp);
        return new ArrayList<>(Arrays.asList(cp.split(File.pathSeparator)));
    }

    private static Peers.Result child(List<String> cp) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        return Peers.run(List.of(java, "-cp", String.join(File.pathSeparator, cp), MixedTcnativeTest.class.getName()),
                null, 90);
    }

    @Test
    void shouldNameBothVersionsWhenVertxsBomPinsTheOlderClasses() throws Exception {
        Path old = Path.of(System.getProperty("mixed.tcnative.dir"), "netty-tcnative-classes-2.0.74.Final.jar");
        assertTrue(Files.exists(old), old + " was not copied by the build");
        List<String> mixed = classPath().stream()
                .map(e -> e.endsWith("netty-tcnative-classes-2.0.84.Final.jar") ? old.toString() : e)
                .collect(Collectors.toList());
        Peers.Result r = child(mixed);
        System.out.println("mixed tcnative: " + r.output().lines().filter(l -> l.startsWith("refused"))
                .findFirst().orElse(r.output()));
        assertEquals(0, r.exitCode(), r.output());
        assertTrue(r.output().contains("refused: "), r.output());
        assertTrue(r.output().contains("2.0.74.Final"), "the message names the classes' version:\n" + r.output());
        assertTrue(r.output().contains("2.0.84.Final"), "the message names the native's version:\n" + r.output());
    }

    @Test
    void shouldBuildWithTheClassPathAsItIs() throws Exception {
        Peers.Result r = child(classPath());
        assertEquals(0, r.exitCode(), r.output());
        assertTrue(r.output().contains("built"), r.output());
    }
}
