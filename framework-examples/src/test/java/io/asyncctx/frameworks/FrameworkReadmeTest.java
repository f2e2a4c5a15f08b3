package io.asyncctx.frameworks;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The README's "With your framework" blocks are the examples' code as it stands: each marked region of an example
 * ({@code // readme:NAME} .. {@code // end}, indentation removed) is a java block of that section, word for word, and
 * the plain-Netty line is the one {@code MinimalOffloadServer} uses. The framework tests run these very methods.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FrameworkReadmeTest {

    private static final Path SOURCES = Path.of("src", "main", "java", "io", "asyncctx", "frameworks");

    static String section() throws Exception {
        String readme = Files.readString(Path.of("..", "README.md"));
        int start = readme.indexOf("\n## With your framework\n");
        assertTrue(start >= 0, "README has no 'With your framework' section");
        int end = readme.indexOf("\n## ", start + 1);
        return readme.substring(start, end < 0 ? readme.length() : end);
    }

    /** The region {@code // readme:name} .. {@code // end} of an example, with its common indentation removed. */
    static String region(String file, String name) throws Exception {
        String source = Files.readString(SOURCES.resolve(file));
        String marker = "// readme:" + name + "\n";
        int start = source.indexOf(marker);
        assertTrue(start >= 0, file + " has no region " + name);
        int end = source.lastIndexOf('\n', source.indexOf("// end\n", start)) + 1; // the end marker's line start
        List<String> lines = new ArrayList<>(source.substring(start + marker.length(), end).lines().toList());
        int indent = lines.stream().filter(l -> !l.isBlank())
                .mapToInt(l -> l.length() - l.stripLeading().length()).min().orElse(0);
        StringBuilder out = new StringBuilder();
        for (String l : lines) {
            out.append(l.isBlank() ? "" : l.substring(indent)).append('\n');
        }
        return out.toString();
    }

    private static void assertBlock(String section, String block, String what) {
        assertTrue(section.contains("```java\n" + block + "```\n"), "the README's " + what + " block is not the "
                + "example's code; copy this into the 'With your framework' section:\n" + block);
    }

    @Test
    void shouldShowTheExamplesCodeWordForWord() throws Exception {
        String section = section();
        assertBlock(section, region("ReactorTlsServer.java", "reactor"), "Reactor Netty");
        assertBlock(section, region("GrpcTlsServer.java", "grpc"), "gRPC");
        assertBlock(section, region("AsyncSslEngineOptions.java", "vertx-options"), "Vert.x options");
        assertBlock(section, region("VertxTlsServer.java", "vertx"), "Vert.x");
        assertBlock(section, region("SniTlsServer.java", "sni") + region("SniTlsServer.java", "sni-pipeline"),
                "SniHandler");
    }

    @Test
    void shouldShowThePlainNettyLineThatMinimalOffloadServerUses() throws Exception {
        String line = "ch.pipeline().addLast(tls.newHandler(ch.alloc()));";
        assertBlock(section(), line + "\n", "plain Netty");
        String minimal = Files.readString(Path.of("..", "examples", "src", "main", "java", "io", "asyncctx",
                "examples", "MinimalOffloadServer.java"));
        assertTrue(minimal.contains(line), "MinimalOffloadServer no longer uses " + line);
    }

    @Test
    void shouldNameTheCommandThatRunsEachExample() throws Exception {
        String section = section();
        assertTrue(section.contains("java -jar framework-examples/target/netty-async-ctx-framework-examples.jar "
                + "reactor"), "the run command");
        for (String which : List.of("`grpc`", "`vertx`", "`sni`")) {
            assertTrue(section.contains(which), which);
        }
    }
}
