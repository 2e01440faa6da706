package org.nxia.vmm.internal;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.Vcpu;
import org.nxia.vmm.spi.VcpuStop;
import org.nxia.vmm.api.VmSpec;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.DeviceConfig;

/**
 * What one kind of VM does differently on a {@link VmCore}: its memory layout
 * and image, its boot registers, whether it has interrupts, how devices are
 * announced to the guest, what an access nobody serves means, and its result.
 * The core calls {@link #load}, then attaches {@link #devices()} (calling
 * {@link #announce} after each), then {@link #boot}.
 */
sealed interface VmKind permits MicroVm, LinuxVm {

    /** Where devices' MMIO windows and Portal regions go, and how many Portal slots there are. */
    record Windows(long mmioBase, long mmioSize, long portalBase, long portalSize, long portalAlign, int portalSlots) {
    }

    /** What the VM was created from. */
    VmSpec spec();

    /** The guest image's name, for {@code info()}: the ELF image or the kernel. */
    String imageName();

    /** The devices to attach, in order: the kind's own first, then the profile's. */
    List<DeviceConfig> devices();

    /** Said after the installed device types when a configured type is missing. */
    String missingDeviceHint();

    Windows windows();

    /** Whether the guest sees a Hyper-V partition ({@code Partition.enableHyperV()}). */
    default boolean hyperV() {
        return false;
    }

    /** A device serves the VM's SynIC: the firmware tables name a VMBus. */
    default void announceVmbus() {
    }

    /** Whether the VM gets the hypervisor's interrupt controllers (and fails to start without them). */
    boolean interrupts();

    /**
     * Whether a port or MMIO access nobody serves stops the VM ({@code true}:
     * a micro-VM guest broke its ABI) or reads as all ones and is counted, as
     * on a PC where a kernel probes for hardware that is not there.
     */
    boolean strictBus();

    Duration timeout();

    /** Before any device: writes the guest image and boot data into memory and wires the kind's own ports. */
    void load(VmCore vm);

    /** After each device: tells the guest about its MMIO windows (in claim order) and its first line, or null. */
    void announce(List<Long> windows, long firstWindowSize, InterruptLine line);

    /** After every device: the last boot data and the boot vCPU's registers. */
    void boot(GuestMemory memory, Vcpu boot);

    /** Lists a mapped Portal region where the guest looks for it. */
    void portalMapped(GuestMemory memory, int slot, String name, long gpa, long size, long doorbellGpa, boolean readOnly);

    /** Marks a Portal slot unmapped; called only while the memory is alive. */
    void portalUnmapped(GuestMemory memory, int slot);

    /** The result's detail when the guest asked for a reset. */
    String resetDetail(String how);

    /** The result's detail when a vCPU stopped for {@code stop} (not a requested stop). */
    String stopDetail(int vcpu, VcpuStop stop);

    /** The guest's output once it stopped; empty if it has none. */
    byte[] output(GuestMemory memory);

    /** Adds the kind's own counters to {@code counters}. */
    void counters(Map<String, Long> counters);

    /** How the guest's instructions ran, from the vCPUs' statistics. */
    String executionMode(VmState state, Map<String, Long> statistics);
}
