package io.asyncctx.engine.pkcs11;

import io.asyncctx.testkit.Await;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * A real {@code p11-kit server} exporting one SoftHSM2 token on a unix socket, the way a token on another host or in
 * another container is used: the JVM loads {@link #CLIENT_MODULE}, which connects to the socket named by
 * {@code P11_KIT_SERVER_ADDRESS}.
 *
 * <p><b>The environment.</b> p11-kit-client reads {@code P11_KIT_SERVER_ADDRESS} from the process environment at
 * {@code C_Initialize}, and a JVM cannot set its own environment; the build sets it for the test JVM (surefire
 * {@code environmentVariables}, to {@code unix:path=target/p11kit/pkcs11.sock}), and this fixture starts the server on
 * exactly that path. One server at a time per test JVM.
 *
 * <p><b>Threading.</b> Start, kill and close on one thread.
 */
public final class P11KitServer implements AutoCloseable {

    /** Debian p11-kit-modules' client module. */
    public static final Path CLIENT_MODULE = Path.of("/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so");

    private final SoftHsmToken token;
    private final Path socket;
    private Process process;

    private P11KitServer(SoftHsmToken token, Path socket) {
        this.token = token;
        this.socket = socket;
    }

    /** True when p11-kit and its client module are installed. */
    /** Skips the calling test without p11-kit, or fails under {@code CI=true} (see SoftHsmToken#assumeAvailable). */
    public static void assumeAvailable() {
        SoftHsmToken.requireOrSkip(isAvailable(), "p11-kit and p11-kit-modules are needed (apt-get install p11-kit "
                + "p11-kit-modules)");
    }

    public static boolean isAvailable() {
        return Files.isReadable(CLIENT_MODULE) && Files.isExecutable(Path.of("/usr/bin/p11-kit"));
    }

    /**
     * Starts a server for {@code token} on the socket of this JVM's {@code P11_KIT_SERVER_ADDRESS}.
     *
     * @throws IllegalStateException when the variable is not set (run the tests through Maven, which sets it)
     */
    public static P11KitServer start(SoftHsmToken token) throws IOException, InterruptedException {
        String address = System.getenv("P11_KIT_SERVER_ADDRESS");
        if (address == null || !address.startsWith("unix:path=")) {
            throw new IllegalStateException("P11_KIT_SERVER_ADDRESS=unix:path=... is not set for this JVM; run the "
                    + "tests through Maven (netty-async-ctx/pom.xml sets it for surefire)");
        }
        P11KitServer server = new P11KitServer(token, Path.of(address.substring("unix:path=".length())));
        server.restart();
        return server;
    }

    /** Starts the server process (again, after {@link #kill()}); returns once the socket accepts. */
    public void restart() throws IOException, InterruptedException {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("the server is running");
        }
        Files.createDirectories(socket.getParent());
        Files.deleteIfExists(socket);
        ProcessBuilder pb = new ProcessBuilder("p11-kit", "server", "-f", "-n", socket.toString(), "--provider",
                SoftHsmToken.SYSTEM_MODULE.toString(), "pkcs11:token=" + token.tokenLabel())
                .redirectErrorStream(true).redirectOutput(socket.getParent().resolve("server.log").toFile());
        pb.environment().put("SOFTHSM2_CONF", token.configFile().toString());
        pb.environment().put("XDG_RUNTIME_DIR", socket.getParent().toString());
        Process started = pb.start();
        process = started;
        Await.until("p11-kit server to create " + socket + " or exit", Duration.ofSeconds(10),
                () -> Files.exists(socket) || !started.isAlive());
        if (!Files.exists(socket)) {
            throw new IOException("p11-kit server exited with " + started.exitValue() + " before creating " + socket
                    + ": " + Files.readString(socket.getParent().resolve("server.log")));
        }
    }

    /** Kills the server and the per-connection p11-kit-remote processes it started: the token is gone. */
    public void kill() throws InterruptedException {
        if (process == null) {
            return;
        }
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
        process.descendants().forEach(ProcessHandle::destroyForcibly);
    }

    @Override
    public void close() throws InterruptedException, IOException {
        kill();
        Files.deleteIfExists(socket);
    }
}
