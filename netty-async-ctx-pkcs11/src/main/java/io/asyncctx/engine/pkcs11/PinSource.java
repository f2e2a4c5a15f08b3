package io.asyncctx.engine.pkcs11;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Arrays;
import java.util.Set;

/**
 * Reads the token's user PIN from a file or an environment variable. A PIN file that group or others may read (or
 * write) is refused with the {@code chmod 600} that fixes it. The PIN never appears in a message.
 *
 * <p><b>Threading.</b> Stateless; any thread (startup only: it reads a file).
 */
final class PinSource {

    private PinSource() {
    }

    /** The PIN from the environment variable {@code name}. */
    static char[] fromEnvironment(String name) {
        String value = System.getenv(name);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("environment variable " + name + " (the token PIN) is not set; set "
                    + "it in the server's environment, or give a PIN file instead");
        }
        return value.toCharArray();
    }

    /** The PIN from {@code file} (UTF-8, trailing newlines ignored), after checking its permissions. */
    static char[] fromFile(Path file) {
        checkPermissions(file);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the PIN file " + file + " (" + e + "); create it with the "
                    + "token's user PIN, readable by the server's user only (chmod 600 " + file + ")", e);
        }
        try {
            int end = bytes.length;
            while (end > 0 && (bytes[end - 1] == '\n' || bytes[end - 1] == '\r')) {
                end--;
            }
            if (end == 0) {
                throw new IllegalArgumentException("the PIN file " + file + " is empty; write the token's user PIN "
                        + "into it");
            }
            CharBuffer chars = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes, 0, end));
            char[] pin = new char[chars.remaining()];
            chars.get(pin);
            Arrays.fill(chars.array(), '\0');
            return pin;
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException("the PIN file " + file + " is not UTF-8 text; write the token's "
                    + "user PIN into it as UTF-8 text on one line (printf '%s\\n' \"$PIN\" > " + file + ")", e);
        } finally {
            Arrays.fill(bytes, (byte) 0);
        }
    }

    /** Refuses a PIN file that group or others may read or write. */
    static void checkPermissions(Path file) {
        Set<PosixFilePermission> perms;
        try {
            perms = Files.getPosixFilePermissions(file);
        } catch (UnsupportedOperationException e) {
            return; // not a POSIX file system: nothing to check
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the PIN file " + file + " (" + e + "); create it with the "
                    + "token's user PIN, readable by the server's user only (chmod 600 " + file + ")", e);
        }
        if (perms.contains(PosixFilePermission.GROUP_READ) || perms.contains(PosixFilePermission.OTHERS_READ)
                || perms.contains(PosixFilePermission.GROUP_WRITE)
                || perms.contains(PosixFilePermission.OTHERS_WRITE)) {
            throw new IllegalArgumentException("the PIN file " + file + " is readable or writable by group or others ("
                    + java.nio.file.attribute.PosixFilePermissions.toString(perms) + "); run: chmod 600 " + file);
        }
    }
}
