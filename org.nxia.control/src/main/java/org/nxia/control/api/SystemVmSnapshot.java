package org.nxia.control.api;

import java.util.Objects;

import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VmSnapshot;

/**
 * A System VM saved while its agent was quiesced (file systems synced, no new work taken):
 * {@link SystemVms#restore} starts a copy that goes on from there as a new generation.
 * It holds the agent's secret of the moment: keep it as you would the VM's RAM.
 *
 * @param profile    what the System VM was booted from (without the launcher's vsock device)
 * @param vm         the saved VM
 * @param secret     the secret its agent proves at that moment
 * @param generation the agent's generation at that moment (0 for a VM that was booted, not restored)
 */
public record SystemVmSnapshot(LinuxProfile profile, VmSnapshot vm, byte[] secret, long generation) {

    public SystemVmSnapshot {
        Objects.requireNonNull(profile, "profile");
        Objects.requireNonNull(vm, "vm");
        if (generation < 0) {
            throw new IllegalArgumentException("a generation is 0 or later, not " + generation);
        }
        secret = secret.clone();
    }

    @Override
    public byte[] secret() {
        return secret.clone();
    }

    /** Never shows the secret. */
    @Override
    public String toString() {
        return "SystemVmSnapshot[" + profile.name() + ", generation " + generation + ", " + vm.ram().size() + " RAM chunks]";
    }
}
