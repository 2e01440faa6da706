package org.nxia.cluster.api;

import java.io.Serial;
import java.io.Serializable;
import java.util.Objects;

/**
 * One VM of a node.
 *
 * @param node        the node that holds it
 * @param id          its id on that node ({@code vm-1})
 * @param name        its name
 * @param state       its state ({@code created}, {@code running}, {@code stopped}, ...)
 * @param memoryBytes guest RAM
 * @param result      how it ended, or empty while it has not
 */
public record VmSummary(String node, String id, String name, String state, long memoryBytes, String result) implements Serializable {

    @Serial
    private static final long serialVersionUID = 1L;

    public VmSummary {
        Objects.requireNonNull(node, "node");
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(state, "state");
        Objects.requireNonNull(result, "result");
    }
}
