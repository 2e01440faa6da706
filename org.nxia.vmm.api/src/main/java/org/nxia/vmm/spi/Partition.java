package org.nxia.vmm.spi;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * A VM at the hypervisor level: its RAM and its vCPUs. Closing it releases
 * every vCPU, the RAM and the kernel objects.
 */
@ConsumerType
public interface Partition extends AutoCloseable {

    /** Guest RAM, one range at guest-physical 0. */
    GuestMemory memory();

    /**
     * Guest RAM as files another process can map, for devices served outside this process
     * (vhost-user); empty where RAM is not in such a file (a clone's private mapping of a
     * snapshot file, a backend that cannot share it).
     */
    default java.util.List<SharedRam> sharedRam() {
        return java.util.List.of();
    }

    /**
     * Creates vCPU {@code id}. Call from any thread; run it on one platform
     * thread.
     */
    Vcpu createVcpu(int id);

    /**
     * Makes this a Hyper-V partition as the guest sees it: each vCPU made afterwards gets the
     * hypervisor's Hyper-V CPUID leaves in place of its own and a synthetic interrupt controller
     * (SynIC); the hypercall page, reference TSC page and synthetic MSRs are the hypervisor's. Call
     * after {@link #createInterruptController} (SynIC sits on the local APIC) and before the first
     * {@link #createVcpu}. Optional.
     *
     * @throws IllegalStateException if vCPUs exist or there is no interrupt controller
     * @throws UnsupportedOperationException if the backend or the hypervisor does not emulate Hyper-V
     * @since 1.1
     */
    default void enableHyperV() {
        throw new UnsupportedOperationException("this backend does not emulate Hyper-V");
    }

    /**
     * {@link #enableHyperV()}, with {@code host} taking what the hypervisor leaves to the VMM: the
     * guest's SynIC page changes and the hypercalls of VMBus ({@code HvPostMessage},
     * {@code HvSignalEvent}). Its synthetic interrupts are {@link InterruptController#syntheticInterrupt}'s.
     *
     * @throws IllegalStateException if vCPUs exist or there is no interrupt controller
     * @throws UnsupportedOperationException if the backend or the hypervisor does not emulate Hyper-V
     * @since 1.2
     */
    default void enableHyperV(SynicHost host) {
        throw new UnsupportedOperationException("this backend does not emulate Hyper-V");
    }

    /**
     * Creates the hypervisor's interrupt controllers for this VM (local
     * APICs, IOAPIC, PICs, PIT), as a stock kernel expects. Call once, before
     * the first {@link #createVcpu}. Optional: a backend that cannot emulate
     * them (PVM, a backend without an in-kernel irqchip) returns empty and the
     * VM keeps to polling.
     *
     * @throws IllegalStateException if vCPUs exist or it was already called
     */
    default Optional<InterruptController> createInterruptController() {
        return Optional.empty();
    }

    /**
     * Makes guest writes of {@code length} bytes to {@code address} (an MMIO
     * address, not RAM) count on a {@link Doorbell} instead of exiting.
     * Optional: empty where the backend has no such mechanism; callers keep
     * serving the address through MMIO exits.
     *
     * @throws IllegalArgumentException if {@code length} is not 1, 2, 4 or 8, or the address is in RAM
     */
    default Optional<Doorbell> createDoorbell(long address, int length) {
        return Optional.empty();
    }

    /**
     * Replaces all of guest RAM by {@code ram}'s pages mapped copy-on-write from its file (pages the
     * file does not hold become zero pages): what the RAM held before is gone, and from now on the
     * guest's and the VMM's writes go to private copies, never to the file. Call before any vCPU
     * runs. Each extent is checked against the file's size and this RAM before anything is mapped.
     * Afterwards {@link #populatedRam()} is all of RAM (the file's pages are not the backend's to probe).
     *
     * @throws IllegalArgumentException if an extent lies past the file's end or RAM's, or RAM is not {@code ram.ramBytes()}
     * @throws IllegalStateException if this RAM cannot be replaced (its placement, huge pages or no overcommit, or a vCPU ran)
     * @throws UnsupportedOperationException if the backend cannot map guest RAM from a file
     * @throws HypervisorException if the file cannot be opened or mapped
     */
    default void mapRamFrom(RamFile ram) {
        throw new UnsupportedOperationException("this backend cannot map guest RAM from a file (copy-on-write clones)");
    }

    /**
     * The parts of RAM that may hold nonzero bytes (pages the guest or the
     * VMM ever touched), ascending; RAM outside them reads as zero. By
     * default all of RAM.
     */
    default List<GuestRange> populatedRam() {
        return List.of(new GuestRange(memory().base(), memory().size()));
    }

    /**
     * Starts logging which RAM pages the vCPUs write (see {@link DirtyLog}).
     * Call before the vCPUs run, or while they run (pre-copy migration: what
     * they wrote before is not logged); a second call returns the same log. Optional:
     * empty where the backend cannot track writes, and callers then treat all
     * of RAM as written.
     *
     * @throws HypervisorException if the hypervisor refuses
     */
    default Optional<DirtyLog> startDirtyLog() {
        return Optional.empty();
    }

    /**
     * The hypervisor's VM-wide state apart from RAM and vCPUs (interrupt
     * controllers, timers, clock). Call while no vCPU runs.
     *
     * @throws UnsupportedOperationException if this backend cannot save it
     * @throws HypervisorException if the hypervisor refuses a part, naming it
     */
    default PartitionState saveState() {
        throw new UnsupportedOperationException("this backend cannot save a partition's state");
    }

    /**
     * Puts {@code state} into this partition before any vCPU runs; every part
     * is checked first (a wrong size, an unknown part or one this partition
     * has no device for is refused, naming it).
     *
     * @throws IllegalArgumentException for a malformed state
     * @throws UnsupportedOperationException if this backend cannot restore it
     * @throws HypervisorException if the hypervisor refuses a part, naming it
     */
    default void restoreState(PartitionState state) {
        throw new UnsupportedOperationException("this backend cannot restore a partition's state");
    }

    /**
     * What became of the RAM part of the {@link HostPlacement} this partition was created with
     * ({@link PlacementOutcome#HUGE_PAGES}, {@link PlacementOutcome#OVERCOMMIT}); empty where the
     * backend does not say.
     */
    default List<PlacementOutcome> placement() {
        return List.of();
    }

    /** Backend statistics for the whole VM, by the backend's names; empty if it has none. */
    Map<String, Long> statistics();

    // ---- shared memory (Portal) ----

    /**
     * Maps {@code host} into the guest at {@code gpa} as its own memory slot:
     * guest accesses reach the host memory with no exit. {@code host} must be
     * page aligned, a whole number of pages, shared memory that outlives the
     * mapping, and {@code [gpa, gpa + size)} must not overlap RAM or another
     * mapping. With {@code readOnly} a guest write exits as an MMIO write.
     *
     * @throws IllegalArgumentException for a misaligned or overlapping range
     * @throws HypervisorException if the backend refuses
     */
    default SharedMapping mapShared(long gpa, MemorySegment host, boolean readOnly) {
        throw new UnsupportedOperationException("this backend cannot map shared memory into a guest");
    }

    @Override
    void close();
}
