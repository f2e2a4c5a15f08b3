package io.asyncctx.netty;

import io.netty.handler.ssl.OpenSslSessionContext;
import io.netty.handler.ssl.OpenSslSessionTicketKey;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import javax.net.ssl.SSLSessionContext;

/**
 * Threading: immutable, any thread. {@link AsyncSniMapping#ticketKeys(TicketKeys)} sets them on its contexts;
 * {@link #applyTo} on one context.
 *
 * <p>Session ticket keys shared by several servers, so that a TLS session resumed on another server behind the same
 * load balancer needs no private-key operation there. The first key encrypts new tickets; every key decrypts (a ticket
 * of a later key is re-issued under the first). Keep the retiring key second for one ticket lifetime, then drop it.
 *
 * <p><b>Format.</b> 48-byte keys as nginx's {@code ssl_session_ticket_key} and HAProxy's {@code tls-ticket-keys}
 * write them: key name (16 bytes), AES key (16), HMAC key (16). A file holds either base64 lines, one key a line,
 * first line first ({@code openssl rand -base64 48}; blank lines and lines starting with {@code #} are skipped), or
 * the raw bytes of one or more keys back to back ({@code openssl rand 48}). 80-byte keys (AES-256) are refused:
 * netty-tcnative encrypts tickets with AES-128-CBC and HMAC-SHA256 under 16-byte keys and has no 32-byte variant.
 */
public final class TicketKeys {

    /** Bytes of one key: name, AES key, HMAC key. */
    public static final int KEY_SIZE = 48;
    private static final int AES256_KEY_SIZE = 80;
    private static final String HOW = "make 48-byte keys with 'openssl rand -base64 48' (one a line, the encrypting "
            + "key first) or 'openssl rand 48 > FILE'";

    private final List<OpenSslSessionTicketKey> keys;

    private TicketKeys(List<OpenSslSessionTicketKey> keys) {
        this.keys = List.copyOf(keys);
    }

    /**
     * Reads keys from {@code file} (see the class javadoc).
     *
     * @throws IOException when the file cannot be read
     * @throws IllegalArgumentException when it holds no key, a key of another size, or one key name twice; the
     *     message names the file and says what to write instead
     */
    public static TicketKeys read(Path file) throws IOException {
        Objects.requireNonNull(file, "file");
        byte[] content = Files.readAllBytes(file);
        List<byte[]> raw = parseText(file, content);
        if (raw == null) {
            raw = parseBinary(file, content);
        }
        return of(file.toString(), raw);
    }

    /** Keys from their 48-byte encodings, the encrypting key first. */
    public static TicketKeys of(byte[]... keys) {
        Objects.requireNonNull(keys, "keys");
        return of("keys", Arrays.asList(keys));
    }

    private static TicketKeys of(String source, List<byte[]> raw) {
        if (raw.isEmpty()) {
            throw new IllegalArgumentException(source + ": no ticket key; " + HOW);
        }
        List<OpenSslSessionTicketKey> out = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (int i = 0; i < raw.size(); i++) {
            byte[] k = Objects.requireNonNull(raw.get(i), "keys[" + i + "]");
            checkSize(source + ": key " + (i + 1), k.length);
            byte[] name = Arrays.copyOfRange(k, 0, 16);
            String hex = HexFormat.of().formatHex(name);
            if (names.contains(hex)) {
                throw new IllegalArgumentException(source + ": key " + (i + 1) + " has the same name as key "
                        + (names.indexOf(hex) + 1) + "; every key needs its own 16-byte name (" + HOW + ")");
            }
            names.add(hex);
            out.add(new OpenSslSessionTicketKey(name, Arrays.copyOfRange(k, 32, 48), Arrays.copyOfRange(k, 16, 32)));
        }
        return new TicketKeys(out);
    }

    private static void checkSize(String what, int size) {
        if (size == AES256_KEY_SIZE) {
            throw new IllegalArgumentException(what + " is 80 bytes (AES-256): not supported, netty-tcnative encrypts "
                    + "tickets with AES-128 and 16-byte HMAC keys only; " + HOW);
        }
        if (size != KEY_SIZE) {
            throw new IllegalArgumentException(what + " is " + size + " bytes, expected " + KEY_SIZE + "; " + HOW);
        }
    }

    /** Base64 lines, or null when the content is not text of that shape (then it is read as raw keys). */
    private static List<byte[]> parseText(Path file, byte[] content) {
        for (byte b : content) {
            if (b != '\n' && b != '\r' && b != '\t' && (b < 0x20 || b > 0x7e)) {
                return null;
            }
        }
        List<byte[]> out = new ArrayList<>();
        String[] lines = new String(content, StandardCharsets.US_ASCII).split("\r?\n");
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].trim();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            byte[] k;
            try {
                k = Base64.getDecoder().decode(line);
            } catch (IllegalArgumentException e) {
                if (out.isEmpty()) {
                    return null; // not a base64 file after all
                }
                throw new IllegalArgumentException(file + ": line " + (i + 1) + " is not base64; " + HOW, e);
            }
            checkSize(file + ": line " + (i + 1), k.length);
            out.add(k);
        }
        return out;
    }

    private static List<byte[]> parseBinary(Path file, byte[] content) {
        if (content.length % KEY_SIZE != 0) {
            checkSize(file + " (raw bytes)", content.length);
        }
        List<byte[]> out = new ArrayList<>();
        for (int i = 0; i < content.length; i += KEY_SIZE) {
            out.add(Arrays.copyOfRange(content, i, i + KEY_SIZE));
        }
        return out;
    }

    /** How many keys. */
    public int size() {
        return keys.size();
    }

    /** The keys' 16-byte names in hex, the encrypting key first (names are public: they travel in every ticket). */
    public List<String> names() {
        List<String> out = new ArrayList<>();
        for (OpenSslSessionTicketKey k : keys) {
            out.add(HexFormat.of().formatHex(k.name()));
        }
        return out;
    }

    /**
     * Sets these keys on {@code context} (a BoringSSL server context): its tickets are encrypted with the first and
     * decrypted with any. Any thread.
     *
     * @throws IllegalArgumentException when the context is not an OpenSSL server context (the JDK provider has no
     *     ticket keys of its own)
     */
    public void applyTo(AsyncSslContext context) {
        Objects.requireNonNull(context, "context");
        SSLSessionContext sessions = context.sessionContext();
        if (!(sessions instanceof OpenSslSessionContext openSsl) || context.isClient()) {
            throw new IllegalArgumentException("ticket keys need a server context of the OPENSSL provider (BoringSSL);"
                    + " this one has " + (sessions == null ? "no session context" : sessions.getClass().getName()));
        }
        openSsl.setTicketKeys(keys.toArray(new OpenSslSessionTicketKey[0]));
    }

    @Override
    public String toString() {
        return "TicketKeys" + names();
    }
}
