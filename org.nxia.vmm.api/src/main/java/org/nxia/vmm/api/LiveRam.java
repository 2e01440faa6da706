package org.nxia.vmm.api;

import java.lang.foreign.MemorySegment;

import org.osgi.annotation.versioning.ProviderType;

/**
 * A VM's RAM read out while the VM runs, for pre-copy migration: read every page once, then
 * again the pages written since, round after round, and at last, with the VM paused, the few
 * written since the last round and the VM's {@link #state()} without its RAM. The vCPUs' writes
 * come from the hypervisor's dirty log, the VMM's from its own record; logging stays on for the
 * VM's life once begun. One at a time per VM ({@link VirtualMachine#liveRam()}); close it to let
 * another begin.
 *
 * @since 3.7
 */
@ProviderType
public interface LiveRam extends AutoCloseable {

    /** Bytes per page: bit {@code p} of a bitmap stands for guest-physical {@code [p * PAGE, (p + 1) * PAGE)}. */
    long PAGE = 4096;

    /** Bytes of guest RAM, from guest-physical 0. */
    long bytes();

    /** Bitmap words {@link #written} needs for this VM: one bit per page. */
    default int words() {
        return Math.toIntExact((bytes() / PAGE + 63) / 64);
    }

    /**
     * Sets in {@code bitmap} the bit of each page to read (again): at the first call every page the
     * VM has touched; at each later one every page a vCPU wrote since the call before, and every
     * page the VMM has handed out for writing since this began (a view it took may be written after
     * it was counted: those few pages count each time). Bits already set stay set. Once the VM is
     * paused, what this sets is all that changed since the call before.
     *
     * @param bitmap at least {@link #words()} words
     * @return pages this call set
     * @throws IllegalArgumentException if {@code bitmap} is too short
     * @throws IllegalStateException if this was closed or the VM was destroyed
     */
    long written(long[] bitmap);

    /**
     * Copies guest RAM from {@code address} into {@code into}, while the VM runs or not: a page a vCPU
     * writes meanwhile shows in the next {@link #written}.
     *
     * @throws IndexOutOfBoundsException if the range is not inside RAM
     * @throws IllegalStateException if this was closed or the VM was destroyed
     */
    void read(long address, MemorySegment into);

    /**
     * The paused VM saved without its RAM (what {@link #read} gave covers it): vCPUs, partition,
     * devices, Portal regions, as {@link VirtualMachine#snapshot()} saves them.
     *
     * @throws IllegalStateException unless the VM is paused
     */
    VmSnapshot state();

    /** Ends this; the hypervisor's log stays on. Idempotent. */
    @Override
    void close();
}
