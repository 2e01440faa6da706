package org.nxia.cluster.api;

import java.io.Serial;
import java.io.Serializable;
import java.time.Duration;
import java.util.Objects;

/**
 * A VM that moved to another node.
 *
 * @param from             its id on the node it left
 * @param to               the VM it is now, on the target
 * @param bytes            everything sent: RAM pages (each time sent) and the saved state, or the snapshot file
 * @param downtime         from its pause on the source to its start on the target
 * @param total            from the request to the target's answer
 * @param how              {@code pre-copy, N rounds} or {@code stop-and-copy}, with why where pre-copy was not possible (since 1.1)
 * @param sentWhileRunning the bytes of RAM sent while the VM still ran; 0 for stop-and-copy (since 1.1)
 */
public record Moved(String from, VmSummary to, long bytes, Duration downtime, Duration total, String how, long sentWhileRunning)
        implements Serializable {

    @Serial
    private static final long serialVersionUID = 1L;

    public Moved {
        Objects.requireNonNull(from, "from");
        Objects.requireNonNull(to, "to");
        Objects.requireNonNull(downtime, "downtime");
        Objects.requireNonNull(total, "total");
        how = how == null ? "stop-and-copy" : how;   // a 1.0 node's answer has none
    }

    /** A stop-and-copy move (1.0). */
    public Moved(String from, VmSummary to, long bytes, Duration downtime, Duration total) {
        this(from, to, bytes, downtime, total, "stop-and-copy", 0);
    }
}
