package io.asyncctx.quic;

import java.util.Objects;
import java.util.concurrent.Executor;

/**
 * The QUIC codec's {@code sslTaskExecutor}: runs each BoringSSL task batch at once on the calling thread (the QUIC
 * channel's event loop) and remembers, while it runs, which batch is running, so that a private-key operation that
 * pauses can hand the batch back to be run again when the operation completes.
 *
 * <p>Why: Netty's QUIC channel re-drives the handshake (processes received packets, calls {@code quiche_conn_send})
 * only once, right after a task batch has run. A key operation that completes later (the point of offload) would then
 * sit unnoticed until the peer retransmits. Running the batch again after completion is a no-op for the finished
 * task (BoringSSL tasks run once), runs any task BoringSSL queued since, and then makes the channel process and send,
 * which resumes the handshake. An executor that is not {@code ImmediateExecutor} also tells the channel not to run
 * tasks directly, which is what routes the tasks through here.
 *
 * <p>Threading: {@link #execute} is called by the QUIC channel on its event loop and runs the task there;
 * {@link #current()} is read on the same thread, inside the task.
 */
final class RedriveExecutor implements Executor {

    private final ThreadLocal<Runnable> current = new ThreadLocal<>();

    @Override
    public void execute(Runnable batch) {
        Objects.requireNonNull(batch, "batch");
        Runnable outer = current.get();
        current.set(batch);
        try {
            batch.run();
        } finally {
            if (outer == null) {
                current.remove();
            } else {
                current.set(outer);
            }
        }
    }

    /** The batch running on this thread, or null when no batch of this executor is running here. */
    Runnable current() {
        return current.get();
    }
}
