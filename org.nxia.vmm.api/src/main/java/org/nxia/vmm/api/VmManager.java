package org.nxia.vmm.api;

import java.util.List;
import java.util.Optional;

import org.osgi.annotation.versioning.ProviderType;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.spi.RamFile;

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

    /**
     * Creates a Linux VM from {@code profile}: loads the bzImage and
     * initramfs, builds boot parameters, the e820 map and MP tables, a 16550
     * console on COM1 (IRQ 4) and the i8042 whose reset stops the VM. Not
     * started. Its {@link VirtualMachine#profile()} is a summary (name,
     * memory, kernel as image, devices); {@link VirtualMachine#info()} has the vCPU count.
     *
     * @throws IllegalArgumentException if the kernel or initramfs is unusable, saying why
     * @throws HypervisorException if the backend lacks hardware virtualization or refuses
     */
    VirtualMachine create(LinuxProfile profile);

    /** Like {@link #run(VmProfile, Appendable)}, for a Linux VM. */
    VmResult run(LinuxProfile profile, Appendable console) throws InterruptedException;

    /**
     * Creates a new VM from {@code snapshot}'s spec, puts the saved RAM,
     * device, partition and vCPU state into it before any vCPU runs, and
     * starts it: it goes on where the saved VM paused. The snapshot is
     * checked as untrusted input; a part the new VM cannot take is refused
     * and nothing is left behind.
     *
     * @throws IllegalArgumentException if the snapshot does not fit this backend or its spec's VM, saying why
     * @throws HypervisorException if the backend refuses a part
     */
    VirtualMachine restore(VmSnapshot snapshot);

    /**
     * Restores {@code snapshot} as {@link #restore} does, with guest RAM mapped copy-on-write from
     * {@code ram} instead of copied: many clones of one snapshot file share its pages until each
     * writes them, and no write reaches the file. {@code snapshot} carries the VM's state and no RAM
     * of its own. A Linux VM's clone shares the saved guest's secrets and random state until whoever
     * started it gives it its own (the System VM launcher moves each clone's agent to a new
     * generation, {@code SystemVms.clone}). The RAM is placed as the file's pages are: a spec asking
     * for huge pages or no overcommit is refused.
     *
     * @throws IllegalArgumentException if the snapshot holds RAM of its own, asks for huge pages
     *         or no overcommit, does not fit this backend, or {@code ram} does not fit its RAM or its file
     * @throws UnsupportedOperationException if the backend cannot map guest RAM from a file
     * @throws HypervisorException if the backend refuses a part
     */
    VirtualMachine clone(VmSnapshot snapshot, RamFile ram);

    /**
     * Makes a {@link Sandbox} of {@code template}: a micro-VM restored from it
     * once, reset in place for each run. The template is a snapshot of a paused
     * micro-VM or of one created and not yet started (its entry point). It is
     * checked as in {@link #restore}.
     *
     * @throws IllegalArgumentException if it is not a micro-VM's, or the VM has devices (their writes to
     *         guest RAM are not tracked yet), or it does not fit this backend
     * @throws UnsupportedOperationException if the backend keeps no log of the pages a guest writes
     * @throws HypervisorException if the backend refuses a part
     */
    Sandbox sandbox(VmSnapshot template);

    List<VirtualMachine> list();

    Optional<VirtualMachine> find(String id);

    /** Stops the VM if needed and releases everything it holds. @return whether it existed */
    boolean destroy(String id);

    /** The backend in use. */
    HypervisorInfo hypervisor();
}
