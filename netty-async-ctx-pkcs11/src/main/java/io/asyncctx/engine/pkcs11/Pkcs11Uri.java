package io.asyncctx.engine.pkcs11;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Objects;
import java.util.Set;

/**
 * A PKCS#11 URI (RFC 7512) naming a private key, the way OpenSSL's pkcs11 provider, p11-kit and GnuTLS name one:
 * {@code pkcs11:token=web;object=tls-key;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/tls/pin}.
 *
 * <p>Path attributes read: {@code token}, {@code serial}, {@code manufacturer}, {@code model} (select the token),
 * {@code slot-id}, {@code object} (the key's label), {@code id} (its CKA_ID, percent-encoded bytes such as {@code %01}),
 * {@code type} (must be {@code private} when given). Query attributes: {@code module-path}, {@code pin-source}
 * ({@code file:} paths only). {@code pin-value} is refused: a PIN in a URI ends up in process lists and shell history.
 * Unknown path attributes are refused (a typo must not select another key); unknown query attributes are ignored, as
 * the RFC allows.
 *
 * <p><b>Threading.</b> Immutable; any thread.
 */
public final class Pkcs11Uri {

    private static final Set<String> PATH_ATTRIBUTES = Set.of("token", "serial", "manufacturer", "model", "slot-id",
            "object", "id", "type", "library-manufacturer", "library-description", "library-version",
            "slot-description", "slot-manufacturer");

    private final String token;
    private final String serial;
    private final String manufacturer;
    private final String model;
    private final Long slotId;
    private final String object;
    private final byte[] id;
    private final Path modulePath;
    private final Path pinFile;

    private Pkcs11Uri(String token, String serial, String manufacturer, String model, Long slotId, String object,
                      byte[] id, Path modulePath, Path pinFile) {
        this.token = token;
        this.serial = serial;
        this.manufacturer = manufacturer;
        this.model = model;
        this.slotId = slotId;
        this.object = object;
        this.id = id;
        this.modulePath = modulePath;
        this.pinFile = pinFile;
    }

    /** True when {@code text} starts with the "pkcs11:" scheme. */
    public static boolean isPkcs11Uri(String text) {
        return text != null && text.regionMatches(true, 0, "pkcs11:", 0, 7);
    }

    /**
     * Parses a URI.
     *
     * @throws IllegalArgumentException when it is not a PKCS#11 URI naming one private key (the message says why)
     */
    public static Pkcs11Uri parse(String uri) {
        Objects.requireNonNull(uri, "uri");
        if (!isPkcs11Uri(uri)) {
            throw new IllegalArgumentException("not a PKCS#11 URI (expected pkcs11:token=...;object=...): " + uri);
        }
        String rest = uri.substring(7);
        String path = rest;
        String query = "";
        int q = rest.indexOf('?');
        if (q >= 0) {
            path = rest.substring(0, q);
            query = rest.substring(q + 1);
        }
        String token = null;
        String serial = null;
        String manufacturer = null;
        String model = null;
        Long slotId = null;
        String object = null;
        byte[] id = null;
        Path modulePath = null;
        Path pinFile = null;
        for (String attr : path.split(";")) {
            if (attr.isEmpty()) {
                continue;
            }
            int eq = attr.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("PKCS#11 URI attribute '" + attr + "' has no value (expected "
                        + "name=value): " + uri);
            }
            String name = attr.substring(0, eq).toLowerCase(java.util.Locale.ROOT);
            byte[] raw = decode(attr.substring(eq + 1), uri);
            String value = new String(raw, StandardCharsets.UTF_8);
            if (!PATH_ATTRIBUTES.contains(name)) {
                throw new IllegalArgumentException("PKCS#11 URI attribute '" + name + "' is not known (known: token, "
                        + "serial, manufacturer, model, slot-id, object, id, type): " + uri);
            }
            switch (name) {
                case "token" -> token = value;
                case "serial" -> serial = value;
                case "manufacturer" -> manufacturer = value;
                case "model" -> model = value;
                case "object" -> object = value;
                case "id" -> id = raw;
                case "slot-id" -> {
                    try {
                        slotId = Long.parseLong(value);
                    } catch (NumberFormatException e) {
                        throw new IllegalArgumentException("PKCS#11 URI slot-id '" + value + "' is not a number: "
                                + uri, e);
                    }
                }
                case "type" -> {
                    if (!"private".equals(value)) {
                        throw new IllegalArgumentException("PKCS#11 URI type=" + value + ": the TLS key must be "
                                + "type=private (or leave type out): " + uri);
                    }
                }
                default -> {
                    // library-* and slot-* descriptions: accepted, not used to select
                }
            }
        }
        for (String attr : query.split("&")) {
            if (attr.isEmpty()) {
                continue;
            }
            int eq = attr.indexOf('=');
            String name = (eq < 0 ? attr : attr.substring(0, eq)).toLowerCase(java.util.Locale.ROOT);
            String value = eq < 0 ? "" : new String(decode(attr.substring(eq + 1), uri), StandardCharsets.UTF_8);
            switch (name) {
                case "module-path" -> modulePath = Path.of(value);
                case "pin-source" -> {
                    String file = value.startsWith("file:") ? value.substring(5) : value;
                    if (file.startsWith("//")) {
                        file = file.substring(2);
                    }
                    if (!file.startsWith("/")) {
                        throw new IllegalArgumentException("PKCS#11 URI pin-source=" + value + ": give the PIN file's "
                                + "absolute path (pin-source=file:/path/to/pin, mode 600)");
                    }
                    pinFile = Path.of(file);
                }
                case "pin-value" -> throw new IllegalArgumentException("PKCS#11 URI with pin-value: a PIN in a URI "
                        + "shows in process lists and shell history; put it in a file readable by the server only "
                        + "(chmod 600) and use pin-source=file:/path/to/pin");
                default -> {
                    // RFC 7512: unknown query attributes are ignored
                }
            }
        }
        if (object == null && id == null) {
            throw new IllegalArgumentException("PKCS#11 URI names no key: add object=LABEL or id=%XX (list the keys "
                    + "with: pkcs11-tool --module MODULE --token-label TOKEN --login --list-objects --type privkey): "
                    + uri);
        }
        return new Pkcs11Uri(token, serial, manufacturer, model, slotId, object, id, modulePath, pinFile);
    }

    private static byte[] decode(String s, String uri) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '%') {
                if (i + 2 >= s.length()) {
                    throw new IllegalArgumentException("PKCS#11 URI has a truncated %-escape in '" + s + "': " + uri);
                }
                int hi = Character.digit(s.charAt(i + 1), 16);
                int lo = Character.digit(s.charAt(i + 2), 16);
                if (hi < 0 || lo < 0) {
                    throw new IllegalArgumentException("PKCS#11 URI has a bad %-escape in '" + s + "': " + uri);
                }
                out.write(hi << 4 | lo);
                i += 2;
            } else {
                byte[] b = String.valueOf(c).getBytes(StandardCharsets.UTF_8);
                out.write(b, 0, b.length);
            }
        }
        return out.toByteArray();
    }

    /** The token label ({@code token=}), or null. */
    public String token() {
        return token;
    }

    /** The token serial number ({@code serial=}), or null. */
    public String serial() {
        return serial;
    }

    /** The token manufacturer ({@code manufacturer=}), or null. */
    public String manufacturer() {
        return manufacturer;
    }

    /** The token model ({@code model=}), or null. */
    public String model() {
        return model;
    }

    /** The slot id ({@code slot-id=}), or null. */
    public Long slotId() {
        return slotId;
    }

    /** The key label ({@code object=}), or null. */
    public String object() {
        return object;
    }

    /** The key's CKA_ID ({@code id=}), or null. */
    public byte[] id() {
        return id == null ? null : id.clone();
    }

    /** The module ({@code module-path=}), or null. */
    public Path modulePath() {
        return modulePath;
    }

    /** The PIN file ({@code pin-source=file:}), or null. */
    public Path pinFile() {
        return pinFile;
    }
}
