package io.asyncctx;

import java.util.Arrays;

/**
 * Threading: a snapshot; the arrays are fresh copies (or shared empty arrays) and are never changed by the ctx. Safe
 * to read on any thread; do not modify the arrays.
 *
 * <p>The wait fds added to and deleted from an {@link AsyncWaitCtx} since its job last resumed (or since the ctx was
 * created), as returned by {@link AsyncWaitCtx#getChangedFds()}.
 *
 * @param added fds to start waiting on, in the order they were set
 * @param deleted fds to stop waiting on, in the order they were set
 */
public record ChangedFds(int[] added, int[] deleted) {

    static final int[] NO_FDS = new int[0];
    static final ChangedFds NONE = new ChangedFds(NO_FDS, NO_FDS);

    /** Creates a snapshot; {@code null} arrays are not allowed. */
    public ChangedFds {
        if (added == null) {
            throw new NullPointerException("added");
        }
        if (deleted == null) {
            throw new NullPointerException("deleted");
        }
    }

    /** True when no fd was added or deleted. */
    public boolean isEmpty() {
        return added.length == 0 && deleted.length == 0;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ChangedFds other && Arrays.equals(added, other.added)
                && Arrays.equals(deleted, other.deleted);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(added) + Arrays.hashCode(deleted);
    }

    @Override
    public String toString() {
        return "ChangedFds[added=" + Arrays.toString(added) + ", deleted=" + Arrays.toString(deleted) + ']';
    }
}
