package io.asyncctx.engine;

import io.asyncctx.AsyncWaitCtx;

import java.security.PublicKey;
import java.util.concurrent.Executor;

/**
 * Threading: an engine is shared by all connections of a server and is thread-safe: {@link #newSession} is
 * called on each connection's owner thread (its event loop) concurrently. {@link #close()} is called once, after the
 * servers that use it have stopped, from a thread that may block: never from an event loop (it may wait for the
 * engine's threads to end).
 *
 * <p>An offload engine: "async aware code" in the man page's words. It performs private-key operations of TLS
 * handshakes away from the event loop (a thread pool, an HSM, an accelerator) and signals their completion through the
 * job's {@link AsyncWaitCtx}: by making a wait fd readable, or, when the ctx has a callback, by setting status {@link
 * io.asyncctx.AsyncStatus#OK} and calling the callback.
 *
 * <p><b>Wait fds.</b> The Netty integration polls a wait fd for readability and, when it turns readable, clears it
 * with one 8-byte read before resuming the jobs waiting on it (the "engine should clear the wake signal" of the man
 * page is done for you). So a wait fd must be an eventfd ({@link EventFd}; {@link AbstractAsyncEngine} sets one up),
 * not a socket or pipe whose data the engine needs.
 *
 * <p>Engines never import Netty's pipeline classes; they see the JDK and this library's core only.
 */
public interface AsyncEngine extends AutoCloseable {

    /** A short name for logs and metrics, such as "software" or "pkcs11". */
    String name();

    /** The public key of the engine's private key; the SslContext builder checks it against the certificate. */
    PublicKey publicKey();

    /**
     * Opens the session of one connection. Called on the connection's owner thread; the session is used on that
     * thread only.
     *
     * @param ctx the connection's wait ctx; the session sets wait fds and the status on it
     * @param owner runs tasks on the owner thread (the channel's event loop); an engine that shares one wait fd among
     *     all connections of a loop uses it as the loop's identity
     */
    EngineSession newSession(AsyncWaitCtx ctx, Executor owner);

    /**
     * An executor on the engine's own threads for work that cannot be paused, such as the delegated tasks of the JDK's
     * TLS engine; null when the engine has none. Bounded as the engine's operations are.
     */
    default Executor taskExecutor() {
        return null;
    }

    /**
     * A signer that performs operations synchronously on the calling thread, for operations so cheap that handing them
     * off costs more than doing them (ECDSA P-256 or Ed25519 with AWS-LC: about 15 us), run on the event loop only
     * under a measured {@code InlinePolicy}. Null (the default) when the engine cannot, or must not, sign on the
     * caller's thread (an HSM, an accelerator). Thread-safe.
     */
    default KeySigner inlineSigner() {
        return null;
    }

    /**
     * Stops the engine: its threads end; operations still queued fail. Idempotent. May block (engines wait, for a
     * bounded time that each documents, for an operation in progress to finish and their threads to end): call it
     * from a thread that may block, never from an event loop (shut the servers' event loops down first, then close
     * the engine, as {@code try-with-resources} around the server does).
     */
    @Override
    void close();
}
