package io.asyncctx.netty;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;

/**
 * The netty-tcnative artifacts on the class path and their versions, read from the {@code pom.properties} that each
 * jar carries, so that a refusal can name what was found and what is needed: the Java classes
 * ({@code netty-tcnative-classes}) and the native library ({@code netty-tcnative-boringssl-static}) must be of one
 * version, or tcnative refuses to load ("multiple incompatible native libraries") and Netty reports only "not
 * available". A BOM that pins one of the two (Vert.x 5.0.7's stack BOM pins the classes to 2.0.74) is the usual cause.
 *
 * <p>Threading: immutable; any thread.
 */
final class TcnativeVersions {

    /** The tcnative version this library is built and tested with (Netty 4.2.18's). */
    static final String BUILT_WITH = "2.0.84.Final";

    static final List<String> ARTIFACTS = List.of("netty-tcnative-classes", "netty-tcnative-boringssl-static",
            "netty-tcnative");

    /** Artifact id to the versions found for it (more than one when several jars of it are on the class path). */
    private final Map<String, TreeSet<String>> found;

    TcnativeVersions(Map<String, TreeSet<String>> found) {
        this.found = found;
    }

    /** Reads the versions from the class path of this library's class loader. */
    static TcnativeVersions onClassPath() {
        ClassLoader loader = TcnativeVersions.class.getClassLoader();
        Map<String, TreeSet<String>> found = new LinkedHashMap<>();
        for (String artifact : ARTIFACTS) {
            try {
                Enumeration<URL> urls = loader.getResources("META-INF/maven/io.netty/" + artifact + "/pom.properties");
                while (urls.hasMoreElements()) {
                    Properties p = new Properties();
                    try (InputStream in = urls.nextElement().openStream()) {
                        p.load(in);
                    }
                    String v = p.getProperty("version");
                    if (v != null) {
                        found.computeIfAbsent(artifact, a -> new TreeSet<>()).add(v.trim());
                    }
                }
            } catch (IOException | RuntimeException e) {
                // unreadable: report what could be read
            }
        }
        return new TcnativeVersions(found);
    }

    /** The versions found per artifact. */
    Map<String, TreeSet<String>> found() {
        return found;
    }

    /**
     * A sentence naming the mixed versions and the fix, or null when every tcnative artifact found has one and the
     * same version.
     */
    String mismatch() {
        TreeSet<String> all = new TreeSet<>();
        found.values().forEach(all::addAll);
        if (all.size() <= 1) {
            return null;
        }
        List<String> parts = new ArrayList<>();
        found.forEach((a, vs) -> parts.add(a + " " + String.join(" and ", vs)));
        return "BoringSSL cannot load: mixed netty-tcnative versions on the class path (" + String.join(", ", parts)
                + "); the Java classes and the native library must be one version, " + BUILT_WITH + " for this "
                + "library (Netty " + nettyVersion() + "): pin io.netty:netty-tcnative-classes and "
                + "io.netty:netty-tcnative-boringssl-static to " + BUILT_WITH + " in your build (a BOM such as "
                + "Vert.x's stack BOM may pin an older netty-tcnative-classes)";
    }

    /** ", found: ..." naming what was found, or ", found no netty-tcnative jar". */
    String describe() {
        if (found.isEmpty()) {
            return " (found no netty-tcnative jar; version " + BUILT_WITH + " is needed)";
        }
        List<String> parts = new ArrayList<>();
        found.forEach((a, vs) -> parts.add(a + " " + String.join(" and ", vs)));
        return " (found " + String.join(", ", parts) + "; version " + BUILT_WITH + " is needed)";
    }

    private static String nettyVersion() {
        Package p = io.netty.handler.ssl.SslContext.class.getPackage();
        String v = p == null ? null : p.getImplementationVersion();
        return v == null ? "4.2" : v;
    }
}
