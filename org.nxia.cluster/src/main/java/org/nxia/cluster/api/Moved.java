package org.nxia.cluster.api;

import java.io.Serial;
import java.io.Serializable;
import java.time.Duration;
import java.util.Objects;

/**
 * A VM that moved to another node.
 *
 * @param from     its id on the node it left
 * @param to       the VM it is now, on the target
 * @param bytes    the snapshot file sent
 * @param downtime from its pause on the source to its start on the target
 * @param total    from the request to the target's answer
 */
public record Moved(String from, VmSummary to, long bytes, Duration downtime, Duration total) implements Serializable {

    @Serial
    private static final long serialVersionUID = 1L;

    public Moved {
        Objects.requireNonNull(from, "from");
        Objects.requireNonNull(to, "to");
        Objects.requireNonNull(downtime, "downtime");
        Objects.requireNonNull(total, "total");
    }
}
