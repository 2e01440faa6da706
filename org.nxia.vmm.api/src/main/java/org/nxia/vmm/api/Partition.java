package org.nxia.vmm.api;

import java.lang.foreign.MemorySegment;
import java.util.Map;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * A VM at the hypervisor level: its RAM and its vCPUs. Closing it releases
 * every vCPU, the RAM and the kernel objects.
 */
@ConsumerType
public interface Partition extends AutoCloseable {

    /** Guest RAM, one range at guest-physical 0. */
    GuestMemory memory();

    /**
     * Creates vCPU {@code id}. Call from any thread; run it on one platform
     * thread.
     */
    Vcpu createVcpu(int id);

    /** Backend statistics for the whole VM, by the backend's names; empty if it has none. */
    Map<String, Long> statistics();

    // ---- shared memory (Portal) ----

    /**
     * Maps {@code host} into the guest at {@code gpa} as its own memory slot:
     * guest accesses reach the host memory with no exit. {@code host} must be
     * page aligned, a whole number of pages, shared memory that outlives the
     * mapping, and {@code [gpa, gpa + size)} must not overlap RAM or another
     * mapping. With {@code readOnly} a guest write exits as an MMIO write.
     *
     * @throws IllegalArgumentException for a misaligned or overlapping range
     * @throws HypervisorException if the backend refuses
     */
    default SharedMapping mapShared(long gpa, MemorySegment host, boolean readOnly) {
        throw new UnsupportedOperationException("this backend cannot map shared memory into a guest");
    }

    @Override
    void close();
}
