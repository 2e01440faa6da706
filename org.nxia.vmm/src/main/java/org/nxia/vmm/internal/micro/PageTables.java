package org.nxia.vmm.internal.micro;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.nxia.vmm.spi.GuestMemory;

/**
 * Builds the 4-level identity map of a micro-VM: all RAM but the null page,
 * plus the MMIO window, with 4 KiB pages, and the portal window with 2 MiB
 * pages (mapped whether or not a region is there: an access to a hole exits
 * as unclaimed MMIO). Every present entry at every level
 * has P, R/W and U/S: PVM runs the guest at CPL 3 and spins on page faults
 * without U/S (see shared/design/TESTBENCH.md).
 */
public final class PageTables {

    static final long P = 1;
    static final long RW = 1 << 1;
    static final long US = 1 << 2;
    static final long PWT = 1 << 3;
    static final long PCD = 1 << 4;
    static final long PS = 1 << 7;
    static final long TABLE = P | RW | US;
    static final long RAM_PAGE = P | RW | US;
    static final long MMIO_PAGE = P | RW | US | PWT | PCD;
    static final long PORTAL_PAGE = P | RW | US | PS;

    private static final long PAGE = 4096;
    private static final long TWO_MIB = 2L << 20;
    private static final long ONE_GIB = 1L << 30;

    private PageTables() {
    }

    /** Bytes of tables for {@code ramSize} of RAM (a multiple of 2 MiB, at most 3 GiB). */
    public static long sizeFor(long ramSize) {
        long pds = (ramSize + ONE_GIB - 1) / ONE_GIB;
        long pts = ramSize / TWO_MIB;
        // PML4 + PDPT + RAM PDs + RAM PTs + the MMIO window's PD and PT
        return (2 + pds + pts + 2) * PAGE;
    }

    /**
     * Writes the tables at {@code base} (page aligned; {@link #sizeFor} bytes).
     *
     * @return the PML4 address, for CR3
     */
    public static long build(GuestMemory memory, long base, long ramSize) {
        // RAM above 3 GiB would share a PDPT slot with the MMIO window's directory.
        if (ramSize % TWO_MIB != 0 || ramSize <= 0 || ramSize > 3 * ONE_GIB) {
            throw new IllegalArgumentException("RAM size must be a positive multiple of 2 MiB up to 3 GiB: " + ramSize);
        }
        // One checked view of the table area; entries are written at offsets into it.
        MemorySegment tables = memory.slice(base, sizeFor(ramSize));
        tables.fill((byte) 0);
        long pdpt = PAGE;
        long next = 2 * PAGE;
        entry(tables, 0, (base + pdpt) | TABLE);

        long pds = (ramSize + ONE_GIB - 1) / ONE_GIB;
        long firstPd = next;
        next += pds * PAGE;
        for (long g = 0; g < pds; g++) {
            entry(tables, pdpt + g * 8, (base + firstPd + g * PAGE) | TABLE);
        }
        for (long chunk = 0; chunk < ramSize / TWO_MIB; chunk++) {
            long pt = next;
            next += PAGE;
            long pd = firstPd + (chunk / 512) * PAGE;
            entry(tables, pd + (chunk % 512) * 8, (base + pt) | TABLE);
            for (int i = 0; i < 512; i++) {
                long address = chunk * TWO_MIB + i * PAGE;
                if (address != 0) { // the null page stays unmapped so a null dereference faults
                    entry(tables, pt + i * 8L, address | RAM_PAGE);
                }
            }
        }

        long window = MicroVmLayout.MMIO_WINDOW;
        long mmioPd = next;
        long mmioPt = next + PAGE;
        entry(tables, pdpt + (window / ONE_GIB) * 8, (base + mmioPd) | TABLE);
        entry(tables, mmioPd + ((window % ONE_GIB) / TWO_MIB) * 8, (base + mmioPt) | TABLE);
        for (int i = 0; i < MicroVmLayout.MMIO_WINDOW_SIZE / PAGE; i++) {
            entry(tables, mmioPt + i * 8L, (window + i * PAGE) | MMIO_PAGE);
        }
        // The portal window shares the MMIO window's gigabyte and directory.
        long portal = MicroVmLayout.PORTAL_WINDOW;
        for (long p = portal; p < portal + MicroVmLayout.PORTAL_WINDOW_SIZE; p += TWO_MIB) {
            entry(tables, mmioPd + ((p % ONE_GIB) / TWO_MIB) * 8, p | PORTAL_PAGE);
        }
        return base;
    }

    private static void entry(MemorySegment tables, long offset, long value) {
        tables.set(ValueLayout.JAVA_LONG_UNALIGNED, offset, value);
    }

    /**
     * Walks the tables like the MMU would, for tests and diagnostics.
     *
     * @return the physical address {@code virtual} maps to, or -1 if not present or not user-accessible
     */
    public static long translate(GuestMemory memory, long cr3, long virtual) {
        long table = cr3 & ~0xfffL;
        int[] shifts = {39, 30, 21, 12};
        long entry = 0;
        for (int shift : shifts) {
            entry = memory.readLong(table + ((virtual >>> shift) & 511) * 8);
            if ((entry & P) == 0 || (entry & US) == 0 || (entry & RW) == 0) {
                return -1;
            }
            if (shift == 21 && (entry & PS) != 0) {
                return (entry & 0x000f_ffff_ffe0_0000L) | (virtual & (TWO_MIB - 1));
            }
            table = entry & 0x000f_ffff_ffff_f000L;
        }
        return (entry & 0x000f_ffff_ffff_f000L) | (virtual & 0xfff);
    }
}
