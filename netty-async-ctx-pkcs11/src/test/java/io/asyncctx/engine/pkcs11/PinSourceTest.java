package io.asyncctx.engine.pkcs11;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** PIN files: what is read, and what a bad one's message tells the operator to do. */
class PinSourceTest {

    @TempDir
    Path dir;

    private Path pinFile(byte[] content) throws Exception {
        Path file = dir.resolve("pin");
        Files.write(file, content);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        return file;
    }

    @Test
    void shouldReadTheFirstLineWithoutItsNewline() throws Exception {
        Path file = pinFile("12ab\u00e9\n".getBytes(StandardCharsets.UTF_8));
        assertArrayEquals("12ab\u00e9".toCharArray(), PinSource.fromFile(file));
    }

    @Test
    void shouldSayHowToWriteAPinFileThatIsNotUtf8() throws Exception {
        Path file = pinFile(new byte[] {'Q', 'X', (byte) 0xff, (byte) 0xfe, '\n'});
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PinSource.fromFile(file));
        assertTrue(e.getMessage().contains("is not UTF-8 text"), e.getMessage());
        assertTrue(e.getMessage().contains("write the token's user PIN into it as UTF-8 text on one line"),
                e.getMessage());
        assertFalse(e.getMessage().contains("QX"), "the PIN's bytes are not shown: " + e.getMessage());
    }
}
