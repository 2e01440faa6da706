package org.nxia.cluster.api;

import java.io.Serial;
import java.io.Serializable;
import java.util.Objects;

/**
 * A node as it describes itself.
 *
 * @param node     its name ({@link NodeAdmin#NODE})
 * @param assembly the assembly it runs ({@code cluster})
 * @param backend  its hypervisor backend and flavour ({@code kvm, hardware})
 * @param vms      how many VMs it holds
 */
public record NodeStatus(String node, String assembly, String backend, int vms) implements Serializable {

    @Serial
    private static final long serialVersionUID = 1L;

    public NodeStatus {
        Objects.requireNonNull(node, "node");
        Objects.requireNonNull(assembly, "assembly");
        Objects.requireNonNull(backend, "backend");
    }
}
