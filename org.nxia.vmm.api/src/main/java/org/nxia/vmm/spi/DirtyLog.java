package org.nxia.vmm.spi;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Which pages of guest RAM the partition's vCPUs wrote, as the hypervisor
 * tracks them (KVM's dirty log). Writes by the VMM through the host mapping
 * are not seen here: the caller tracks those itself.
 */
@ConsumerType
public interface DirtyLog {

    /** Bytes per page of the log: bit {@code p} stands for guest-physical {@code [p * PAGE, (p + 1) * PAGE)}. */
    long PAGE = 4096;

    /**
     * Sets, in {@code bitmap}, the bit of each RAM page written by a vCPU
     * since logging began or since the last call (bit {@code p % 64} of
     * {@code bitmap[p / 64]}; bits already set stay set), and starts the next
     * interval. Call while no vCPU runs, or a page written meanwhile may count
     * in either interval. Allocates nothing.
     *
     * @param bitmap at least {@code ceil(RAM pages / 64)} words
     * @return how many pages this interval logged
     * @throws IllegalArgumentException if {@code bitmap} is too short
     * @throws HypervisorException if the hypervisor refuses
     */
    long collect(long[] bitmap);
}
