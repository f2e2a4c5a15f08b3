package io.asyncctx.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's "Use it in your project" code is compiled as it stands, against the library and Netty only (the
 * shaded examples jar holds exactly those plus the examples), and it is the same code as
 * {@link MinimalOffloadServer}, which ExampleServerProcessIT runs and asks with curl.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ReadmeSnippetIT {

    static String readmeJavaBlock() throws Exception {
        String readme = Files.readString(Path.of("..", "README.md"));
        int section = readme.indexOf("## Use it in your project");
        assertTrue(section >= 0, "README has no 'Use it in your project' section");
        int start = readme.indexOf("```java\n", section);
        int end = readme.indexOf("```\n", start + 8);
        assertTrue(start > 0 && end > start, "no java block in the section");
        return readme.substring(start + "```java\n".length(), end);
    }

    @Test
    void shouldBeWordForWordTheMinimalServer() throws Exception {
        String source = Files.readString(Path.of("src", "main", "java", "io", "asyncctx", "examples",
                "MinimalOffloadServer.java"));
        String block = readmeJavaBlock();
        // The README leaves out the package line: the class compiles in any package, or in none.
        assertEquals(source.substring(source.indexOf("import ")), block, "the README's block and MinimalOffloadServer.java differ; copy the file into "
                + "the README");
    }

    @Test
    void shouldCompileAsItStands(@TempDir Path dir) throws Exception {
        Path src = dir.resolve("MinimalOffloadServer.java");
        Files.writeString(src, readmeJavaBlock());
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int rc = javac.run(null, err, err, "-Xlint:all", "-Werror", "--release", "17", "-cp",
                ServerJvm.jar(), "-d", dir.resolve("classes").toString(), src.toString());
        assertEquals(0, rc, err.toString(StandardCharsets.UTF_8));
        assertTrue(Files.exists(dir.resolve("classes/MinimalOffloadServer.class")),
                List.of(dir.toFile().list()).toString());
    }
}
