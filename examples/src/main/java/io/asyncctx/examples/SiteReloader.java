package io.asyncctx.examples;

import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.FileSystems;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * Reloads {@link Sites} on SIGHUP and when a watched file changes (certbot and cert-manager replace files by an atomic
 * rename, which the directory watch sees as a create): one daemon thread waits for either and calls
 * {@link Sites#reload()}, so file reading and engine building never run on an event loop. Changes within a short
 * settling time are taken together.
 *
 * <p>Threading: {@link #start()} and {@link #close()} from the server's thread; the signal handler and the watch only
 * wake the reloader thread.
 */
final class SiteReloader implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(SiteReloader.class.getName());
    private static final long SETTLE_MILLIS = 200;

    private final Sites sites;
    private final WatchService watch;
    private final Semaphore wake = new Semaphore(0);
    private final Thread reloader;
    private final Thread watcher;
    private volatile boolean closed;

    SiteReloader(Sites sites) throws IOException {
        this.sites = sites;
        this.watch = FileSystems.getDefault().newWatchService();
        Set<Path> dirs = new LinkedHashSet<>();
        for (Path f : sites.files()) {
            dirs.add(f.toAbsolutePath().getParent());
        }
        for (Path d : dirs) {
            d.register(watch, StandardWatchEventKinds.ENTRY_CREATE, StandardWatchEventKinds.ENTRY_MODIFY);
        }
        this.reloader = new Thread(this::runReloads, "site-reloader");
        this.reloader.setDaemon(true);
        this.watcher = new Thread(this::runWatch, "site-watcher");
        this.watcher.setDaemon(true);
    }

    /** The warning when the process was started with SIGHUP ignored. */
    static final String SIGHUP_IGNORED = "SIGHUP is ignored by this process (started under nohup or by a supervisor "
            + "that ignores it): reloads come from renamed files only; start the server without nohup to reload on "
            + "SIGHUP";

    private volatile boolean sighupHandled;

    /** Starts the threads and installs the SIGHUP handler. */
    void start() {
        reloader.start();
        watcher.start();
        try {
            sun.misc.SignalHandler previous = sun.misc.Signal.handle(new sun.misc.Signal("HUP"), s -> requestReload());
            // A process started with SIGHUP ignored (nohup, some supervisors) keeps ignoring it: the JVM accepts the
            // handler and never calls it. Say so instead of failing to reload in silence.
            sighupHandled = previous != sun.misc.SignalHandler.SIG_IGN;
            if (!sighupHandled) {
                LOG.log(System.Logger.Level.WARNING, SIGHUP_IGNORED);
            }
        } catch (IllegalArgumentException e) {
            LOG.log(System.Logger.Level.WARNING, "SIGHUP cannot be handled here (" + e.getMessage() + "); files are "
                    + "still watched");
        }
    }

    /** True once {@link #start()} installed a SIGHUP handler that the process will call. */
    boolean sighupHandled() {
        return sighupHandled;
    }

    /** Asks for a reload (any thread; does not block). */
    void requestReload() {
        wake.release();
    }

    private void runWatch() {
        Set<String> names = new LinkedHashSet<>();
        for (Path f : sites.files()) {
            names.add(f.getFileName().toString());
        }
        while (!closed) {
            WatchKey key;
            try {
                key = watch.take();
            } catch (InterruptedException | ClosedWatchServiceException e) {
                return;
            }
            boolean relevant = key.pollEvents().stream().anyMatch(ev -> ev.context() instanceof Path p
                    && names.contains(p.getFileName().toString()) || ev.kind() == StandardWatchEventKinds.OVERFLOW);
            key.reset();
            if (relevant) {
                requestReload();
            }
        }
    }

    private void runReloads() {
        while (!closed) {
            try {
                wake.acquire();
                // Settle: a renewal renames several files one after another; take them together.
                wake.tryAcquire(Integer.MAX_VALUE, SETTLE_MILLIS, TimeUnit.MILLISECONDS);
                wake.drainPermits();
            } catch (InterruptedException e) {
                return;
            }
            if (closed) {
                return;
            }
            try {
                sites.reload();
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "reload failed, the sites in use keep serving: " + e);
            }
        }
    }

    @Override
    public void close() throws IOException {
        closed = true;
        watch.close();
        reloader.interrupt();
        watcher.interrupt();
        try {
            reloader.join(5_000);
            watcher.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
