package org.nxia.vmm.spi;

import java.util.List;

/**
 * Where a VM asks to run on the host. Checked here for shape only; whether the host has the CPUs
 * and the pages is decided when the VM is made (see {@link PlacementOutcome}).
 *
 * @param cpus       host CPUs for the vCPU threads, vCPU {@code i} on {@code cpus[i % size]}; empty: not pinned
 * @param hugePages  back guest RAM with huge pages where the host has them (best effort)
 * @param overcommit whether guest RAM may be overcommitted; {@code false}: all of it is allocated when the VM is made
 */
public record HostPlacement(List<Integer> cpus, boolean hugePages, boolean overcommit) {

    /** Highest host CPU index a placement may name (a 4096-bit affinity mask). */
    public static final int MAX_CPU = 4095;
    /** Not pinned, 4 KiB pages, overcommit allowed: what a VM gets unless its profile says otherwise. */
    public static final HostPlacement NONE = new HostPlacement(List.of(), false, true);

    public HostPlacement {
        cpus = List.copyOf(cpus);
        for (int c : cpus) {
            if (c < 0 || c > MAX_CPU) {
                throw new IllegalArgumentException("host CPU " + c + " is out of range 0.." + MAX_CPU);
            }
        }
        if (cpus.stream().distinct().count() != cpus.size()) {
            throw new IllegalArgumentException("host CPUs " + cpus + " name a CPU twice");
        }
    }

    /** Whether anything differs from {@link #NONE}. */
    public boolean requested() {
        return !equals(NONE);
    }
}
