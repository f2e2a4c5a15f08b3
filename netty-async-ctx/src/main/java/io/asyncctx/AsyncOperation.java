package io.asyncctx;

/**
 * Threading: {@link #run} is called on the job's owner thread, by {@link AsyncJob#start()} and again by
 * {@link AsyncJob#resume()} when the engine had answered {@link AsyncStatus#EAGAIN}. It must not block: it submits the
 * work, tells the job's ctx how completion will be signalled (a wait fd, or status {@link AsyncStatus#OK} for the
 * callback; {@link AsyncStatus#EAGAIN} or {@link AsyncStatus#ERR} when it could not submit) and returns. The result is
 * delivered with {@link AsyncJob#complete} or {@link AsyncJob#fail} from any thread, possibly before {@code run}
 * returns.
 *
 * <p>The work an {@link AsyncJob} runs: typically "hand this private-key operation to an engine".
 *
 * @param <T> the result type
 */
@FunctionalInterface
public interface AsyncOperation<T> {

    /**
     * Starts (or, after EAGAIN, retries) the operation of {@code job}.
     *
     * @throws Exception a synchronous failure: the job ends with {@link AsyncStartResult#ERR}
     */
    void run(AsyncJob<T> job) throws Exception;
}
