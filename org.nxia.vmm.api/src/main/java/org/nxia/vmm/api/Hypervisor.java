package org.nxia.vmm.api;

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
}
