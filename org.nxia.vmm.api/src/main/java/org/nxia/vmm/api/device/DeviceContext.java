package org.nxia.vmm.api.device;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Optional;

import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.SharedMapping;
import org.osgi.annotation.versioning.ProviderType;

/** What the VMM gives a device of one VM. */
@ProviderType
public interface DeviceContext {

    /** The VM's id. */
    String vmId();

    /** The VM's memory; every access is checked (the guest is hostile). */
    GuestMemory memory();

    /**
     * The VM's RAM as files another process can map, for a device served outside the VMM
     * (a vhost-user back-end); empty where the VM's RAM cannot be shared.
     */
    default java.util.List<org.nxia.vmm.spi.SharedRam> sharedRam() {
        return java.util.List.of();
    }

    /**
     * Routes {@code count} ports from {@code first} to {@code device}.
     *
     * @throws IllegalArgumentException when the range is outside 0..0xffff or already claimed
     */
    void claimPorts(int first, int count, PortDevice device);

    /**
     * Allocates a window of {@code size} bytes (rounded up to 4 KiB) in the
     * VM's device area and routes it to {@code device}.
     *
     * @return the window's guest-physical base
     * @throws IllegalArgumentException when the device area is full
     */
    long claimMmio(long size, MmioDevice device);

    /**
     * Maps a Portal region into the VM's portal window (docs/guest-abi.md,
     * "Portals") and lists it in the boot block's portal table under
     * {@code name}, with {@code doorbellGpa} (0 for none). Closing the mapping
     * removes the slot and marks the table entry unmapped.
     *
     * @throws IllegalArgumentException when the window or the table is full, or the region is not page aligned
     */
    default SharedMapping mapPortal(String name, MemorySegment region, boolean readOnly, long doorbellGpa) {
        throw new UnsupportedOperationException("this VM cannot map shared memory");
    }

    /**
     * As {@link #mapPortal(String, MemorySegment, boolean, long)}, for a region whose content
     * lives in {@code file} (a file-backed region): a snapshot of the VM saves it by reference
     * (the path and its content's SHA-256), not by copy. A context that keeps no snapshot maps it
     * as any region.
     *
     * @since 2.1
     */
    default SharedMapping mapPortal(String name, MemorySegment region, Optional<Path> file, boolean readOnly, long doorbellGpa) {
        return mapPortal(name, region, readOnly, doorbellGpa);
    }

    /**
     * The interrupt line {@code gsi} (a fixed ISA IRQ: 4 for COM1), for this
     * device alone. Empty when the VM has no interrupt controller (micro-VMs:
     * their guests poll), so a device raises interrupts only where one exists.
     *
     * @throws IllegalArgumentException when another device holds the line or it is not a valid GSI
     */
    default Optional<InterruptLine> claimIrq(int gsi) {
        return Optional.empty();
    }

    /**
     * A free interrupt line, edge-triggered, for a device whose bus announces
     * it (virtio-mmio on the kernel command line). Empty when the VM has no
     * interrupt controller.
     *
     * @throws IllegalArgumentException when every line is taken
     */
    default Optional<InterruptLine> claimIrq() {
        return Optional.empty();
    }

    /**
     * A doorbell on {@code address}, inside an MMIO window claimed through
     * this VM: the guest's writes of {@code length} bytes there are counted
     * for a host thread ({@link Doorbell#await}) instead of exiting on the
     * vCPU thread (KVM: ioeventfd). Empty where the VM has none (a backend
     * without ioeventfd, as PVM may be; a VM that has stopped): the writes
     * keep arriving as MMIO exits. The VM closes every doorbell when it
     * stops; the device closes one it no longer wants.
     *
     * @throws IllegalArgumentException when the range is not inside a claimed MMIO window, or
     *                                  {@code length} is not 1, 2, 4 or 8
     */
    default Optional<Doorbell> createDoorbell(long address, int length) {
        return Optional.empty();
    }

    /**
     * Makes {@code host} the one that serves this VM's SynIC (a VMBus server): the guest's SynIC page
     * changes and its VMBus hypercalls reach it on the vCPU threads, and the VM's firmware tables
     * name a VMBus ({@code VMBus} in the DSDT), which a Linux guest looks for before it connects.
     *
     * @return the VM's synthetic interrupts; empty if the VM is not a Hyper-V partition
     * @throws IllegalStateException if another device serves it already
     * @since 2.2
     */
    default Optional<org.nxia.vmm.spi.Synic> claimSynic(org.nxia.vmm.spi.SynicHost host) {
        return Optional.empty();
    }

    /** Text the device shows the user: appended to the VM's console. Safe from any thread. */
    void console(byte[] bytes, int offset, int length);

    /** Ends the VM as if the guest had exited with {@code status} (a debug-exit device). */
    void exit(int status);

    /** Ends the VM because the guest asked for a reset (there is no reboot: the VM stops cleanly). */
    void reset(String how);

    /** Ends the VM because the guest misused this device beyond recovery. */
    void fail(String reason);
}
