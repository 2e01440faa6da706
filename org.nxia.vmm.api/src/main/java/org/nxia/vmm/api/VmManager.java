package org.nxia.vmm.api;

import java.util.List;
import java.util.Optional;

import org.osgi.annotation.versioning.ProviderType;

/**
 * Creates and tracks VMs. Several VMs live in one platform at once; each
 * failure stays inside its VM.
 */
@ProviderType
public interface VmManager {

    /**
     * Creates a VM from {@code profile}: loads and checks the image, builds
     * memory and the vCPU. The VM is {@link VmState#CREATED}, not running.
     *
     * @throws IllegalArgumentException if the image is not a valid guest for this profile
     * @throws HypervisorException if the backend is unavailable or refuses
     */
    VirtualMachine create(VmProfile profile);

    /**
     * Creates, starts and waits for a VM for at most the profile's timeout,
     * stopping it on timeout; the VM is destroyed afterwards.
     */
    VmResult run(VmProfile profile, Appendable console) throws InterruptedException;

    List<VirtualMachine> list();

    Optional<VirtualMachine> find(String id);

    /** Stops the VM if needed and releases everything it holds. @return whether it existed */
    boolean destroy(String id);

    /** The backend in use. */
    HypervisorInfo hypervisor();
}
