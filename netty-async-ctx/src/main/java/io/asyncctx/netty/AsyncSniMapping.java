package io.asyncctx.netty;

import io.asyncctx.engine.AsyncEngine;
import io.netty.handler.ssl.SslContext;
import io.netty.util.Mapping;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Threading: thread-safe. {@link #map} is called by {@code SniHandler} on event loops and never blocks;
 * {@link #replace}, {@link #ticketKeys(TicketKeys)} and {@link #metrics} may be called from any thread;
 * {@link #close()} blocks (engines' close may wait for their threads): never call it on an event loop.
 *
 * <p>Server-name (SNI) selection over several {@link AsyncSslContext}s, for Netty's own {@code SniHandler}
 * ({@code new SniHandler(mapping)}): many sites on one port, each with its own certificate chain and its own key
 * source, as nginx's {@code server} blocks. A site has a name (for {@link #replace} and {@link #metrics}) and the
 * server names it answers: exact ({@code shop.example.org}) or wildcard ({@code *.example.org}, which matches one
 * label, as a wildcard certificate does: {@code a.example.org}, not {@code example.org} nor {@code a.b.example.org}).
 * An exact name wins over a wildcard; a client without SNI or with an unknown name gets the default site (the one
 * named by {@link Builder#defaultSite}, else the first added). Names are compared in lower case, a trailing dot
 * ignored.
 *
 * <p><b>Live rotation.</b> {@link #replace} swaps a site's context while serving: handshakes that start afterwards use
 * the new context at once (also one whose name was looked up just before the swap: the replaced context hands new
 * handlers on to its successor); handshakes already started on the old context finish on it; established
 * connections are untouched (they no longer need a key). The old context's engines are closed, on a thread of their
 * own, once none of its handshakes is in progress and none of its operations is in flight, or at the latest after
 * the retire timeout (a handshake stuck that long fails; a warning says so).
 *
 * <p><b>Ownership.</b> The mapping owns the engines of the contexts it is given: it closes a replaced context's
 * engines (unless another context of the mapping still uses them) and all of them in {@link #close()}. Session
 * ticket keys given to the mapping ({@link Builder#ticketKeys}, {@link #ticketKeys(TicketKeys)}) are set on every
 * context, also on those given later to {@link #replace}, so that a ticket resumes whichever site issued it.
 */
public final class AsyncSniMapping implements Mapping<String, SslContext>, AutoCloseable {

    private static final System.Logger LOG = System.getLogger(AsyncSniMapping.class.getName());

    private final Map<String, Site> sites;
    private final Map<String, Site> exact;
    private final Map<String, Site> wildcards;
    private final Site fallback;
    private final Duration retireTimeout;
    private final Object lock = new Object();
    private TicketKeys ticketKeys; // guarded by lock
    private boolean closed; // guarded by lock

    private AsyncSniMapping(Builder b) {
        this.sites = Collections.unmodifiableMap(new LinkedHashMap<>(b.sites));
        Map<String, Site> ex = new LinkedHashMap<>();
        Map<String, Site> wc = new LinkedHashMap<>();
        for (Site s : sites.values()) {
            for (String n : s.serverNames) {
                Map<String, Site> target = n.startsWith("*.") ? wc : ex;
                String key = n.startsWith("*.") ? n.substring(1) : n;
                Site before = target.putIfAbsent(key, s);
                if (before != null) {
                    throw new IllegalArgumentException("server name '" + n + "' is given to both site '" + before.name
                            + "' and site '" + s.name + "'; give each name to one site");
                }
            }
        }
        this.exact = Map.copyOf(ex);
        this.wildcards = Map.copyOf(wc);
        this.fallback = b.defaultSite == null ? sites.values().iterator().next() : sites.get(b.defaultSite);
        if (fallback == null) {
            throw new IllegalArgumentException("defaultSite '" + b.defaultSite + "' is not a site; sites: "
                    + sites.keySet());
        }
        this.retireTimeout = b.retireTimeout;
        this.ticketKeys = b.ticketKeys;
        if (ticketKeys != null) {
            for (Site s : sites.values()) {
                ticketKeys.applyTo(s.current);
            }
        }
    }

    /** A builder of a mapping. */
    public static Builder builder() {
        return new Builder();
    }

    /** The context of the site that {@code hostname} selects (the default site for null or an unknown name). */
    @Override
    public SslContext map(String hostname) {
        return select(hostname).current;
    }

    /** The context that {@code hostname} selects now, as {@link #map}. Any thread. */
    public AsyncSslContext context(String hostname) {
        return select(hostname).current;
    }

    /** The name of the site that {@code hostname} selects. Any thread. */
    public String siteOf(String hostname) {
        return select(hostname).name;
    }

    /** The sites' names, in the order they were added. */
    public Set<String> sites() {
        return sites.keySet();
    }

    private Site select(String hostname) {
        if (hostname == null || hostname.isEmpty()) {
            return fallback;
        }
        String h = normalize(hostname);
        Site s = exact.get(h);
        if (s != null) {
            return s;
        }
        int dot = h.indexOf('.');
        if (dot > 0) {
            s = wildcards.get(h.substring(dot));
            if (s != null) {
                return s;
            }
        }
        return fallback;
    }

    /**
     * Replaces site {@code site}'s context with {@code next} (see the class javadoc): new handshakes use {@code next}
     * from now on; the old context's engines are closed when it is idle.
     *
     * @return completes when the old context's engines are closed (or at once, if {@code next} is the current one)
     * @throws IllegalArgumentException when there is no such site or {@code next} is not a fresh server context
     * @throws IllegalStateException when the mapping is closed
     */
    public CompletableFuture<Void> replace(String site, AsyncSslContext next) {
        Objects.requireNonNull(site, "site");
        Objects.requireNonNull(next, "next");
        Site s = sites.get(site);
        if (s == null) {
            throw new IllegalArgumentException("no site '" + site + "'; sites: " + sites.keySet());
        }
        checkServerContext(next, "next");
        Retirement r;
        synchronized (lock) {
            if (closed) {
                throw new IllegalStateException("mapping is closed");
            }
            if (s.current == next) {
                return CompletableFuture.completedFuture(null);
            }
            for (Site other : sites.values()) {
                if (other.current == next) {
                    throw new IllegalArgumentException("next: the context is already site '" + other.name
                            + "''s; build one context per site");
                }
            }
            if (ticketKeys != null) {
                ticketKeys.applyTo(next);
            }
            r = new Retirement(s, s.current);
            s.current = next;
            s.rotations++;
            s.retiring.add(r);
        }
        r.context.retire(next, r.idle::countDown);
        r.thread.start();
        return r.done;
    }

    /**
     * Sets new session ticket keys on every site's context (the first key encrypts new tickets, all decrypt): a
     * ticket whose key is no longer in {@code keys} is refused, and the client does a full handshake. Any thread.
     */
    public void ticketKeys(TicketKeys keys) {
        Objects.requireNonNull(keys, "keys");
        synchronized (lock) {
            this.ticketKeys = keys;
            for (Site s : sites.values()) {
                keys.applyTo(s.current);
                for (Retirement r : s.retiring) {
                    keys.applyTo(r.context);
                }
            }
        }
    }

    /** The counters of each site, in the order the sites were added. Any thread. */
    public List<SiteMetrics> metrics() {
        List<SiteMetrics> out = new ArrayList<>(sites.size());
        for (Site s : sites.values()) {
            out.add(metrics(s));
        }
        return out;
    }

    /**
     * The counters of site {@code site}, summed over its current context and those it replaced. Any thread.
     *
     * @throws IllegalArgumentException when there is no such site
     */
    public SiteMetrics metrics(String site) {
        Site s = sites.get(Objects.requireNonNull(site, "site"));
        if (s == null) {
            throw new IllegalArgumentException("no site '" + site + "'; sites: " + sites.keySet());
        }
        return metrics(s);
    }

    private SiteMetrics metrics(Site s) {
        synchronized (lock) {
            long ops = s.closedOperations;
            long failed = s.closedFailures;
            long nanos = s.closedNanos;
            long inFlight = 0;
            long handshakes = 0;
            List<AsyncSslContext> live = new ArrayList<>();
            live.add(s.current);
            for (Retirement r : s.retiring) {
                live.add(r.context);
            }
            for (AsyncSslContext c : live) {
                ops += c.offloadedOperations();
                failed += c.failedOperations();
                nanos += c.operationNanos();
                inFlight += c.operationsInFlight();
                handshakes += c.handshakesInProgress();
            }
            return new SiteMetrics(s.name, s.serverNames, s.current.engine().name(), ops, failed, inFlight, nanos,
                    handshakes, s.rotations, s.retiring.size());
        }
    }

    /**
     * Closes every engine of every context (current and replaced), without waiting for handshakes in progress: stop
     * the servers first. Blocks: never on an event loop. Idempotent.
     */
    @Override
    public void close() {
        List<Retirement> pending = new ArrayList<>();
        Set<AsyncEngine> engines = Collections.newSetFromMap(new IdentityHashMap<>());
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            for (Site s : sites.values()) {
                engines.addAll(s.current.engines());
                pending.addAll(s.retiring);
            }
        }
        for (Retirement r : pending) {
            r.idle.countDown();
        }
        for (Retirement r : pending) {
            try {
                r.thread.join(TimeUnit.SECONDS.toMillis(30));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        for (AsyncEngine e : engines) {
            closeQuietly(e);
        }
    }

    private void retired(Retirement r, boolean idle) {
        if (!idle) {
            LOG.log(System.Logger.Level.WARNING, "site '" + r.site.name + "': the replaced context still has "
                    + r.context.handshakesInProgress() + " handshake(s) in progress and "
                    + r.context.operationsInFlight() + " operation(s) in flight after " + retireTimeout.toMillis()
                    + " ms; closing its engine now (they fail). Raise retireTimeout if handshakes take that long.");
        }
        List<AsyncEngine> toClose = new ArrayList<>();
        synchronized (lock) {
            Site s = r.site;
            s.retiring.remove(r);
            s.closedOperations += r.context.offloadedOperations();
            s.closedFailures += r.context.failedOperations();
            s.closedNanos += r.context.operationNanos();
            Set<AsyncEngine> live = Collections.newSetFromMap(new IdentityHashMap<>());
            if (!closed) {
                for (Site site : sites.values()) {
                    live.addAll(site.current.engines());
                    for (Retirement other : site.retiring) {
                        live.addAll(other.context.engines());
                    }
                }
            }
            for (AsyncEngine e : r.context.engines()) {
                if (!live.contains(e)) {
                    toClose.add(e);
                }
            }
        }
        for (AsyncEngine e : toClose) {
            closeQuietly(e);
        }
    }

    private static void closeQuietly(AsyncEngine e) {
        try {
            e.close();
        } catch (RuntimeException ex) {
            LOG.log(System.Logger.Level.WARNING, "closing engine '" + e.name() + "' failed", ex);
        }
    }

    static String normalize(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        return n.endsWith(".") ? n.substring(0, n.length() - 1) : n;
    }

    static String checkServerName(String name) {
        Objects.requireNonNull(name, "serverName");
        String n = normalize(name);
        boolean wildcard = n.startsWith("*.");
        String rest = wildcard ? n.substring(2) : n;
        if (rest.isEmpty() || rest.contains("*") || rest.startsWith(".") || rest.contains("..")
                || !rest.chars().allMatch(ch -> ch == '.' || ch == '-' || ch == '_' || Character.isLetterOrDigit(ch))
                || (wildcard && !rest.contains("."))) {
            throw new IllegalArgumentException("server name '" + name + "': expected a host name (shop.example.org) "
                    + "or a wildcard of one label at the start (*.example.org)");
        }
        return n;
    }

    private static void checkServerContext(AsyncSslContext c, String what) {
        if (c.isClient()) {
            throw new IllegalArgumentException(what + ": a client context; build it with AsyncSslContextBuilder"
                    + ".forServer");
        }
        if (c.isRetired()) {
            throw new IllegalArgumentException(what + ": this context was replaced before; build a new one");
        }
    }

    /**
     * Threading: immutable (a snapshot), any thread.
     *
     * <p>One site's counters, summed over its current context and the contexts it replaced: what an operator compares
     * across sites to see whose key is slow or failing.
     *
     * @param site the site's name
     * @param serverNames the server names it answers
     * @param engine the name of the current context's engine
     * @param operations private-key operations handed to the engines
     * @param failedOperations of those, the ones that failed
     * @param operationsInFlight handed to the engines and not yet ended
     * @param operationNanos time from hand-off to end, summed over the operations that ended
     * @param handshakesInProgress handshakes started and not yet ended
     * @param rotations how many times the site's context was replaced
     * @param retiring replaced contexts whose engines are not closed yet
     */
    public record SiteMetrics(String site, List<String> serverNames, String engine, long operations,
                              long failedOperations, long operationsInFlight, long operationNanos,
                              long handshakesInProgress, long rotations, int retiring) {

        /** Mean time of an operation in microseconds (0 before the first). */
        public double meanOperationMicros() {
            long ended = operations - operationsInFlight;
            return ended <= 0 ? 0 : operationNanos / 1e3 / ended;
        }
    }

    /** One site: its names and its current context. Guarded by the mapping's lock except {@code current} reads. */
    private static final class Site {
        final String name;
        final List<String> serverNames;
        volatile AsyncSslContext current;
        final List<Retirement> retiring = new ArrayList<>();
        long rotations;
        long closedOperations;
        long closedFailures;
        long closedNanos;

        Site(String name, List<String> serverNames, AsyncSslContext current) {
            this.name = name;
            this.serverNames = serverNames;
            this.current = current;
        }
    }

    /** A replaced context waiting to be idle; its thread closes its engines. */
    private final class Retirement {
        final Site site;
        final AsyncSslContext context;
        final CountDownLatch idle = new CountDownLatch(1);
        final CompletableFuture<Void> done = new CompletableFuture<>();
        final Thread thread;

        Retirement(Site site, AsyncSslContext context) {
            this.site = site;
            this.context = context;
            this.thread = new Thread(this::run, "async-sni-retire-" + site.name);
            this.thread.setDaemon(true);
        }

        private void run() {
            try {
                boolean idleInTime = idle.await(retireTimeout.toNanos(), TimeUnit.NANOSECONDS);
                retired(this, idleInTime);
                done.complete(null);
            } catch (InterruptedException e) {
                done.completeExceptionally(e);
            } catch (RuntimeException | Error e) {
                done.completeExceptionally(e);
                throw e;
            }
        }
    }

    /**
     * Threading: a builder, for one thread.
     *
     * <p>Configures an {@link AsyncSniMapping}.
     */
    public static final class Builder {
        private final Map<String, Site> sites = new LinkedHashMap<>();
        private String defaultSite;
        private Duration retireTimeout = Duration.ofSeconds(60);
        private TicketKeys ticketKeys;

        private Builder() {
        }

        /**
         * Adds site {@code name} served by {@code context} for {@code serverNames} (exact or {@code *.} wildcard;
         * none: {@code name} itself is the server name).
         */
        public Builder site(String name, AsyncSslContext context, String... serverNames) {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(context, "context");
            checkServerContext(context, "context of site '" + name + "'");
            if (sites.containsKey(name)) {
                throw new IllegalArgumentException("site '" + name + "' is added twice");
            }
            for (Site s : sites.values()) {
                if (s.current == context) {
                    throw new IllegalArgumentException("site '" + name + "': its context is already site '" + s.name
                            + "''s; give one site several server names instead");
                }
            }
            List<String> names = new ArrayList<>();
            for (String n : serverNames.length == 0 ? new String[] {name} : serverNames) {
                names.add(checkServerName(n));
            }
            sites.put(name, new Site(name, List.copyOf(names), context));
            return this;
        }

        /** The site for clients without SNI and for unknown names (default: the first site added). */
        public Builder defaultSite(String name) {
            this.defaultSite = Objects.requireNonNull(name, "name");
            return this;
        }

        /**
         * How long a replaced context may wait for its handshakes and operations before its engines are closed
         * anyway (default 60 s; Netty's {@code SniHandler} sets no handshake timeout of its own).
         */
        public Builder retireTimeout(Duration timeout) {
            Objects.requireNonNull(timeout, "timeout");
            if (timeout.isNegative() || timeout.isZero()) {
                throw new IllegalArgumentException("retireTimeout: must be positive, got " + timeout);
            }
            this.retireTimeout = timeout;
            return this;
        }

        /** Session ticket keys shared by all sites (and by other servers with the same keys). */
        public Builder ticketKeys(TicketKeys keys) {
            this.ticketKeys = Objects.requireNonNull(keys, "keys");
            return this;
        }

        /**
         * Builds the mapping.
         *
         * @throws IllegalArgumentException when there is no site, a server name is given to two sites, or the default
         *     site is unknown
         */
        public AsyncSniMapping build() {
            if (sites.isEmpty()) {
                throw new IllegalArgumentException("no site: add at least one with site(name, context)");
            }
            return new AsyncSniMapping(this);
        }
    }
}
