package io.asyncctx.examples;

import io.asyncctx.engine.AsyncEngine;
import io.asyncctx.engine.PemKeys;
import io.asyncctx.engine.SoftwareEngine;
import io.asyncctx.engine.pkcs11.Pkcs11Uri;
import io.asyncctx.netty.AsyncSniMapping;
import io.asyncctx.netty.AsyncSslContext;
import io.asyncctx.netty.AsyncSslContextBuilder;
import io.asyncctx.netty.TicketKeys;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.UnaryOperator;

/**
 * The server's sites from {@code --site NAME,CERT,KEY[,CERT2,KEY2]} flags (NAME: a server name or {@code *.} wildcard;
 * the first site is the default; a second certificate and key of the other type serve RSA and ECDSA side by side; a
 * KEY is a PEM file or a {@code pkcs11:} URI of a key on a token, and a {@link KeySource} opens its engine) and
 * the session ticket keys from {@code --ticket-keys FILE}: an {@link AsyncSniMapping} for Netty's {@code SniHandler},
 * and {@link #reload()}, which re-reads every file and replaces the sites whose files changed. A site whose new files
 * are bad (unreadable, a key that does not match its certificate) is refused with one log line and keeps serving its
 * old pair; so do the ticket keys.
 *
 * <p>Threading: {@link #reload()} is serialized (synchronized) and blocks (reads files, builds engines): call it from
 * the reloader's thread, never from an event loop. The mapping is thread-safe.
 */
final class Sites implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(Sites.class.getName());

    /**
     * Opens the engine of one key of a site: a PEM file (software or simulated engine) or a {@code pkcs11:} URI.
     * Called on the thread that builds the sites (start-up, then the reloader's), never on an event loop.
     */
    @FunctionalInterface
    interface KeySource {

        /**
         * @param engineName the name for the engine ({@code SITE} or {@code SITE:2} for the second key)
         * @param cert the certificate chain's PEM file
         * @param key a PEM file or a {@code pkcs11:} URI
         * @throws IOException or a RuntimeException whose message says which file or key is wrong
         */
        AsyncEngine open(String engineName, Path cert, String key) throws IOException;
    }

    /** Software engines (two workers each) for PEM keys: what {@link SiteReloadTest} and the library's tests use. */
    static final KeySource SOFTWARE = (name, cert, key) -> SoftwareEngine.builder().pem(Path.of(key), cert)
            .name("software:" + name).workers(2).build();

    /** One {@code --site} flag; {@code key} and {@code key2} are PEM files or {@code pkcs11:} URIs. */
    record Spec(String name, Path cert, String key, Path cert2, String key2) {

        /** Parses {@code NAME,CERT,KEY[,CERT2,KEY2]}. */
        static Spec parse(String flag) {
            String[] p = flag.split(",", -1);
            if (p.length != 3 && p.length != 5 || Arrays.stream(p).anyMatch(String::isBlank)) {
                throw new BadFlagException("--site " + flag + ": expected NAME,CERT,KEY or NAME,CERT,KEY,CERT2,KEY2 "
                        + "(NAME a server name such as shop.example.org, *.example.org for a wildcard; CERT a PEM "
                        + "chain; KEY a PEM key or a pkcs11: URI)");
            }
            return new Spec(p[0].trim(), Path.of(p[1].trim()), p[2].trim(),
                    p.length == 5 ? Path.of(p[3].trim()) : null, p.length == 5 ? p[4].trim() : null);
        }

        /** The files of the site (a key on a token is no file: its certificate file is watched). */
        List<Path> files() {
            List<Path> out = new ArrayList<>(List.of(cert));
            if (!Pkcs11Uri.isPkcs11Uri(key)) {
                out.add(Path.of(key));
            }
            if (cert2 != null) {
                out.add(cert2);
                if (!Pkcs11Uri.isPkcs11Uri(key2)) {
                    out.add(Path.of(key2));
                }
            }
            return out;
        }
    }

    private final List<Spec> specs;
    private final Path ticketKeyFile;
    private final UnaryOperator<AsyncSslContextBuilder> settings;
    private final KeySource keys;
    private final Map<String, String> fingerprints = new LinkedHashMap<>();
    private final AsyncSniMapping mapping;
    private String ticketFingerprint;
    private long attempts;
    private long reloads;
    private long refusals;
    private boolean closed;

    /**
     * Builds every site; a bad file here fails the start (the message names the site and the file).
     *
     * @param settings the server-wide TLS settings (protocols, ALPN, metrics) applied to every site's builder
     */
    Sites(List<Spec> specs, Path ticketKeyFile, UnaryOperator<AsyncSslContextBuilder> settings) throws IOException {
        this(specs, ticketKeyFile, settings, SOFTWARE);
    }

    /**
     * Builds every site, each key's engine opened by {@code keys}; a bad file here fails the start.
     *
     * @param settings the server-wide TLS settings (protocols, ALPN, metrics) applied to every site's builder
     */
    Sites(List<Spec> specs, Path ticketKeyFile, UnaryOperator<AsyncSslContextBuilder> settings, KeySource keys)
            throws IOException {
        this.keys = Objects.requireNonNull(keys, "keys");
        if (specs.isEmpty()) {
            throw new BadFlagException("no --site given");
        }
        this.specs = List.copyOf(specs);
        this.ticketKeyFile = ticketKeyFile;
        this.settings = Objects.requireNonNull(settings, "settings");
        AsyncSniMapping.Builder b = AsyncSniMapping.builder();
        List<AsyncSslContext> built = new ArrayList<>();
        boolean success = false;
        try {
            for (Spec s : this.specs) {
                AsyncSslContext c;
                try {
                    c = build(s);
                } catch (IOException | RuntimeException e) {
                    throw new BadFlagException("--site " + s.name() + ": " + e.getMessage());
                }
                built.add(c);
                b.site(s.name(), c, s.name());
                fingerprints.put(s.name(), fingerprint(s.files()));
            }
            if (ticketKeyFile != null) {
                b.ticketKeys(TicketKeys.read(ticketKeyFile));
                ticketFingerprint = fingerprint(List.of(ticketKeyFile));
            }
            mapping = b.build();
            success = true;
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new BadFlagException(e.getMessage());
        } finally {
            if (!success) {
                for (AsyncSslContext c : built) {
                    c.engine().close();
                    if (c.secondEngine() != null) {
                        c.secondEngine().close();
                    }
                }
            }
        }
    }

    AsyncSniMapping mapping() {
        return mapping;
    }

    /** Every file the sites and ticket keys are read from (what the reloader watches). */
    List<Path> files() {
        List<Path> out = new ArrayList<>();
        for (Spec s : specs) {
            out.addAll(s.files());
        }
        if (ticketKeyFile != null) {
            out.add(ticketKeyFile);
        }
        return out;
    }

    /** Reload attempts, reloads that replaced a site or the ticket keys, and refusals, so far. */
    synchronized long[] reloadCounts() {
        return new long[] {attempts, reloads, refusals};
    }

    /**
     * Re-reads every file: each site whose files changed gets a new context (its old one finishes its handshakes and
     * is closed by the mapping); the ticket keys are replaced when their file changed. Returns the names of what was
     * replaced.
     */
    synchronized List<String> reload() {
        if (closed) {
            return List.of();
        }
        attempts++;
        List<String> replaced = new ArrayList<>();
        for (Spec s : specs) {
            String fp;
            try {
                fp = fingerprint(s.files());
            } catch (IOException e) {
                refuse("site '" + s.name() + "'", e);
                continue;
            }
            if (fp.equals(fingerprints.get(s.name()))) {
                continue;
            }
            AsyncSslContext next;
            try {
                next = build(s);
            } catch (IOException | RuntimeException e) {
                refuse("site '" + s.name() + "'", e);
                continue;
            }
            mapping.replace(s.name(), next);
            fingerprints.put(s.name(), fp);
            replaced.add(s.name());
            LOG.log(System.Logger.Level.INFO, "site '" + s.name() + "': new certificate (serial "
                    + serial(s.cert()) + ", engine " + next.engine().name()
                    + ") serving; the old pair finishes its handshakes and is closed");
        }
        if (ticketKeyFile != null) {
            try {
                String fp = fingerprint(List.of(ticketKeyFile));
                if (!fp.equals(ticketFingerprint)) {
                    TicketKeys keys = TicketKeys.read(ticketKeyFile);
                    mapping.ticketKeys(keys);
                    ticketFingerprint = fp;
                    replaced.add("ticket-keys");
                    LOG.log(System.Logger.Level.INFO, "ticket keys reloaded from " + ticketKeyFile + ": " + keys);
                }
            } catch (IOException | RuntimeException e) {
                refuse("ticket keys", e);
            }
        }
        if (!replaced.isEmpty()) {
            reloads++;
        }
        return replaced;
    }

    private void refuse(String what, Exception e) {
        refusals++;
        LOG.log(System.Logger.Level.WARNING, "reload refused for " + what + ", the old one keeps serving: "
                + e.getMessage());
    }

    private AsyncSslContext build(Spec s) throws IOException {
        for (Path p : s.files()) {
            if (!Files.isReadable(p)) {
                throw new IOException(p + " is not readable");
            }
        }
        AsyncEngine engine = keys.open(s.name(), s.cert(), s.key());
        AsyncEngine second = null;
        boolean success = false;
        try {
            AsyncSslContextBuilder b = AsyncSslContextBuilder.forServer(engine, s.cert().toFile());
            if (s.cert2() != null) {
                second = keys.open(s.name() + ":2", s.cert2(), s.key2());
                b.secondKey(second, s.cert2().toFile());
            }
            AsyncSslContext c = settings.apply(b).build();
            success = true;
            return c;
        } finally {
            if (!success) {
                engine.close();
                if (second != null) {
                    second.close();
                }
            }
        }
    }

    /** The serial number (hex) of the first certificate in {@code pem}, for the log; "?" when unreadable. */
    static String serial(Path pem) {
        try {
            return PemKeys.readCertificates(pem).get(0).getSerialNumber()
                    .toString(16);
        } catch (Exception e) {
            return "?";
        }
    }

    private static String fingerprint(List<Path> files) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        for (Path p : files) {
            md.update(Files.readAllBytes(p));
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /** Per-site counters in Prometheus text format, for {@code /metrics}. */
    String prometheus() {
        StringBuilder sb = new StringBuilder();
        sb.append("# TYPE asyncctx_site_operations_total counter\n");
        for (AsyncSniMapping.SiteMetrics m : mapping.metrics()) {
            String l = "{site=\"" + m.site() + "\"}";
            sb.append("asyncctx_site_operations_total").append(l).append(' ').append(m.operations()).append('\n');
            sb.append("asyncctx_site_operations_failed_total").append(l).append(' ').append(m.failedOperations())
                    .append('\n');
            sb.append("asyncctx_site_operations_in_flight").append(l).append(' ').append(m.operationsInFlight())
                    .append('\n');
            sb.append("asyncctx_site_operation_seconds_sum").append(l).append(' ').append(m.operationNanos() / 1e9)
                    .append('\n');
            sb.append("asyncctx_site_rotations_total").append(l).append(' ').append(m.rotations()).append('\n');
            sb.append("asyncctx_site_retiring").append(l).append(' ').append(m.retiring()).append('\n');
        }
        return sb.toString();
    }

    /** Closes every engine (blocks; waits for a reload in progress): after the server's loops have stopped. */
    @Override
    public synchronized void close() {
        closed = true;
        mapping.close();
    }
}
