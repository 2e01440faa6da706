package org.nxia.vmm.api;

import org.osgi.annotation.versioning.ProviderType;
import org.nxia.vmm.spi.GuestMemory;

/**
 * The VM a host call came from, for host functions that keep state per VM
 * (Gemini attaches rings that live in the guest's RAM).
 */
@ProviderType
public interface HostCallContext {

    /** The calling VM. */
    VirtualMachine vm();

    /** The calling VM's RAM; bounds-checked, valid until the VM is destroyed. */
    GuestMemory memory();

    /**
     * Runs {@code action} when the VM is destroyed, before its memory is
     * released; after it returns nothing may touch {@link #memory()} again.
     * Runs at once if the VM is already destroyed.
     */
    void onDestroy(Runnable action);
}
