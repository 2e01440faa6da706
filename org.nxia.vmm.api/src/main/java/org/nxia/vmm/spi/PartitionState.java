package org.nxia.vmm.spi;

import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The VM-wide state a hypervisor keeps outside RAM and the vCPUs (on x86:
 * the interrupt controllers, the PIT, the paravirtual clock), as backend
 * parts. Guest RAM is not in it.
 *
 * @param parts the backend's parts, names unique, in the order the backend restores them
 */
public record PartitionState(List<StatePart> parts) {

    public PartitionState {
        parts = List.copyOf(parts);
        Set<String> names = new HashSet<>();
        for (StatePart p : parts) {
            if (!names.add(p.name())) {
                throw new IllegalArgumentException("partition state has part '" + p.name() + "' twice");
            }
        }
    }

    /** The part named {@code name}, if saved. */
    public Optional<StatePart> part(String name) {
        return parts.stream().filter(p -> p.name().equals(name)).findFirst();
    }
}
