package org.nxia.vmm.spi;

import java.util.Optional;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * A hypervisor backend (KVM, WHP, HVF), registered as an OSGi service.
 *
 * <p>A backend that cannot run on this host still registers, with
 * {@link HypervisorInfo#available()} false and a reason, so tools can say why.
 */
@ConsumerType
public interface Hypervisor {

    /** Service property naming the backend, e.g. {@code kvm}. */
    String BACKEND_PROPERTY = "nxia.hypervisor";

    /** What this backend is and whether it can run VMs here. Cheap; cached. */
    HypervisorInfo info();

    /**
     * Creates a partition (a VM at the hypervisor level) with {@code ramBytes}
     * of guest RAM at guest-physical address 0.
     *
     * @throws HypervisorException when the backend is unavailable or a call fails
     */
    Partition createPartition(long ramBytes);

    /**
     * Like {@link #createPartition(long)}, with guest RAM placed as {@code placement} asks (its
     * huge pages and overcommit; {@link Partition#placement()} says what took effect). A backend
     * that cannot place RAM refuses any placement of RAM.
     *
     * @throws HypervisorException if RAM cannot be placed as asked where that is a requirement
     *         ({@code overcommit=false}), or a call fails
     */
    default Partition createPartition(long ramBytes, HostPlacement placement) {
        if (placement.hugePages() || !placement.overcommit()) {
            throw new UnsupportedOperationException("the " + info().backend() + " backend cannot place guest RAM"
                    + " (huge pages, no overcommit)");
        }
        return createPartition(ramBytes);
    }

    /** Pinning threads to host CPUs, where this backend's host can. */
    default Optional<HostAffinity> hostAffinity() {
        return Optional.empty();
    }
}
