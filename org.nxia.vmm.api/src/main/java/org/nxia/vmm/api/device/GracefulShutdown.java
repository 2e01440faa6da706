package org.nxia.vmm.api.device;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * A device through which the host can ask the guest to power itself off (Hyper-V's shutdown
 * integration service), so that its file systems are synced and unmounted; the VM then ends as
 * the guest powers off.
 *
 * @since 2.2
 */
@ConsumerType
public interface GracefulShutdown {

    /**
     * Asks the guest to power off, without waiting for it.
     *
     * @return false if the guest cannot be asked now: its driver has not opened the device, or a
     *         request is in flight
     */
    boolean requestShutdown();
}
