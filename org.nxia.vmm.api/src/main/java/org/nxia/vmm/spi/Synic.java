package org.nxia.vmm.spi;

import org.osgi.annotation.versioning.ProviderType;

/**
 * A Hyper-V partition's synthetic interrupt controllers as the device that serves them sees them
 * (a VMBus server, from {@code DeviceContext.claimSynic}).
 *
 * @since 1.2
 */
@ProviderType
public interface Synic {

    /** The partition's vCPUs: VP indexes 0 to {@code vcpus() - 1}. */
    int vcpus();

    /**
     * SINT {@code sint} of vCPU {@code vcpu}, once that vCPU runs (not while the device is made).
     *
     * @throws IllegalArgumentException if there is no such vCPU or SINT
     * @throws IllegalStateException if it is taken
     * @throws UnsupportedOperationException if the hypervisor cannot route synthetic interrupts
     */
    SyntheticInterrupt interrupt(int vcpu, int sint);
}
