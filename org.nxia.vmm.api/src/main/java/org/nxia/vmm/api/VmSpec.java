package org.nxia.vmm.api;

import java.time.Duration;
import java.util.List;

import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.spi.HostPlacement;

/**
 * What a VM was created from: a micro-VM profile (an OS-less ELF image) or a
 * Linux profile (a kernel and initramfs). Switch over it for what differs.
 */
public sealed interface VmSpec permits VmProfile, LinuxProfile {

    /** A name for people; need not be unique. */
    String name();

    /** Guest RAM in bytes. */
    long memoryBytes();

    int vcpus();

    /**
     * How long {@code VmManager.run} waits before stopping the VM; zero for no limit, which only a
     * Linux profile may have ({@link LinuxProfile#NO_TIMEOUT}).
     */
    Duration timeout();

    /** The devices the spec asks for, by type and parameters (a Linux VM's console UART and i8042 are not listed). */
    List<DeviceConfig> devices();

    /** Where on the host its vCPUs and RAM go. */
    default HostPlacement placement() {
        return HostPlacement.NONE;
    }
}
