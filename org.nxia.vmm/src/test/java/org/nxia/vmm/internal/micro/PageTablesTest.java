package org.nxia.vmm.internal.micro;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashSet;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nxia.vmm.spi.GuestMemory;

class PageTablesTest {

    private static final long MIB = 1L << 20;
    private static final long GIB = 1L << 30;
    private static final long PAGE = 4096;
    private static final long ADDRESS_MASK = 0x000f_ffff_ffff_f000L;
    private static final long WINDOW = MicroVmLayout.MMIO_WINDOW;
    private static final long WINDOW_END = WINDOW + MicroVmLayout.MMIO_WINDOW_SIZE;

    /** Tables built at the top of {@code ramSize}, as the layout places them. */
    private record Built(GuestMemory memory, long base, long cr3) {
    }

    /** Backs all of RAM: only for small sizes. */
    private static Built buildInRam(long ramSize) {
        GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[(int) ramSize]));
        long base = ramSize - PageTables.sizeFor(ramSize);
        return new Built(memory, base, PageTables.build(memory, base, ramSize));
    }

    /**
     * Backs only the tables' own pages: building and walking touch nothing else,
     * so gigabytes of RAM can be checked with a few MiB of heap.
     */
    private static Built buildTablesOnly(long ramSize) {
        long base = ramSize - PageTables.sizeFor(ramSize);
        GuestMemory memory = GuestMemory.of(base, MemorySegment.ofArray(new byte[(int) PageTables.sizeFor(ramSize)]));
        return new Built(memory, base, PageTables.build(memory, base, ramSize));
    }

    @ParameterizedTest
    @ValueSource(longs = {2 * MIB, 4 * MIB, 16 * MIB, 64 * MIB})
    void identityMapsAllRamButTheNullPage(long ramSize) {
        Built t = buildInRam(ramSize);
        assertEquals(t.base(), t.cr3());
        assertIdentityMapped(t, ramSize);
    }

    @ParameterizedTest
    @ValueSource(longs = {1024 * MIB, 1026 * MIB, 2048 * MIB, 3072 * MIB})
    void identityMapsAllRamAcrossSeveralPageDirectories(long ramSize) {
        assertIdentityMapped(buildTablesOnly(ramSize), ramSize);
    }

    @Test
    void buildsOverNativeMemory() {
        long ram = 16 * MIB;
        GuestMemory memory = GuestMemory.of(0, Arena.ofAuto().allocate(ram, PAGE));
        long base = ram - PageTables.sizeFor(ram);
        long cr3 = PageTables.build(memory, base, ram);
        assertIdentityMapped(new Built(memory, base, cr3), ram);
    }

    private static void assertIdentityMapped(Built t, long ramSize) {
        assertEquals(-1, PageTables.translate(t.memory(), t.cr3(), 0), "the null page is not mapped");
        assertEquals(-1, PageTables.translate(t.memory(), t.cr3(), 0xfff));
        for (long page = PAGE; page < ramSize; page += PAGE) {
            long got = PageTables.translate(t.memory(), t.cr3(), page);
            if (got != page) {
                fail("page 0x%x maps to 0x%x".formatted(page, got));
            }
        }
        assertEquals(ramSize - 1, PageTables.translate(t.memory(), t.cr3(), ramSize - 1), "offset within the page is kept");
        assertEquals(0x1234, PageTables.translate(t.memory(), t.cr3(), 0x1234));
        for (long address : new long[] {ramSize, ramSize + PAGE, ramSize + 2 * MIB - 1, GIB, 2 * GIB, 3 * GIB,
                WINDOW - PAGE, WINDOW - 1, WINDOW_END, WINDOW_END + PAGE, 4 * GIB - 1, 4 * GIB, 512 * GIB,
                1L << 46, (1L << 47) - 1, 1L << 47, -1, -PAGE, Long.MIN_VALUE, 0xffff_8000_0000_0000L}) {
            boolean portal = address >= MicroVmLayout.PORTAL_WINDOW && address < MicroVmLayout.PORTAL_WINDOW + MicroVmLayout.PORTAL_WINDOW_SIZE;
            if (address >= ramSize && !portal) {
                assertEquals(-1, PageTables.translate(t.memory(), t.cr3(), address),
                        () -> "0x%x is beyond RAM but mapped".formatted(address));
            }
        }
        for (long page = WINDOW; page < WINDOW_END; page += PAGE) {
            assertEquals(page, PageTables.translate(t.memory(), t.cr3(), page), "MMIO window is identity mapped");
        }
        assertEquals(WINDOW_END - 1, PageTables.translate(t.memory(), t.cr3(), WINDOW_END - 1));
        long portalEnd = MicroVmLayout.PORTAL_WINDOW + MicroVmLayout.PORTAL_WINDOW_SIZE;
        for (long page = MicroVmLayout.PORTAL_WINDOW; page < portalEnd; page += PAGE) {
            assertEquals(page + 8, PageTables.translate(t.memory(), t.cr3(), page + 8), "portal window is identity mapped");
        }
        if (ramSize < MicroVmLayout.PORTAL_WINDOW) { // 3 GiB of RAM ends where the window starts
            assertEquals(-1, PageTables.translate(t.memory(), t.cr3(), MicroVmLayout.PORTAL_WINDOW - 1), "nothing below the portal window");
        }
        assertEntriesAndTableCount(t, ramSize);
    }

    /** Walks raw entries: every present entry at every level has P, R/W and U/S; only MMIO leaves have PCD|PWT. */
    private static void assertEntriesAndTableCount(Built t, long ramSize) {
        Set<Long> tables = new HashSet<>();
        long[] leaves = {0, 0, 0};  // RAM, MMIO, portal window (2 MiB)
        walk(t.memory(), t.cr3(), 4, 0, tables, leaves);
        assertEquals(PageTables.sizeFor(ramSize) / PAGE, tables.size(), "sizeFor matches the tables used");
        for (long table : tables) {
            assertTrue(table >= t.base() && table < t.base() + PageTables.sizeFor(ramSize), "table inside its region");
        }
        assertEquals(ramSize / PAGE - 1, leaves[0], "one leaf per RAM page but the null page");
        assertEquals(MicroVmLayout.MMIO_WINDOW_SIZE / PAGE, leaves[1]);
        assertEquals(MicroVmLayout.PORTAL_WINDOW_SIZE / MicroVmLayout.PORTAL_ALIGN, leaves[2]);
    }

    private static void walk(GuestMemory memory, long table, int level, long virtualBase, Set<Long> tables, long[] leaves) {
        assertTrue(tables.add(table), () -> "table 0x%x is referenced twice".formatted(table));
        int shift = 12 + 9 * (level - 1);
        for (int i = 0; i < 512; i++) {
            long entry = memory.readLong(table + i * 8L);
            if ((entry & PageTables.P) == 0) {
                assertEquals(0, entry, "a non-present entry is all zero");
                continue;
            }
            long virtual = virtualBase + ((long) i << shift);
            long flags = PageTables.P | PageTables.RW | PageTables.US;
            assertEquals(flags, entry & flags, () -> "entry at level %d for 0x%x lacks P/RW/US: 0x%x".formatted(level, virtual, entry));
            assertEquals(0, entry & (1L << 63), "no NX on mapped pages");
            long next = entry & ADDRESS_MASK;
            boolean portal = virtual >= MicroVmLayout.PORTAL_WINDOW && virtual < MicroVmLayout.PORTAL_WINDOW + MicroVmLayout.PORTAL_WINDOW_SIZE;
            if (level == 2 && portal) {
                assertEquals(PageTables.PS, entry & PageTables.PS, "the portal window has 2 MiB pages");
                assertEquals(virtual, next, "portal pages map identity");
                assertEquals(0, entry & (PageTables.PCD | PageTables.PWT), "portal memory is cached");
                leaves[2]++;
                continue;
            }
            assertEquals(0, entry & PageTables.PS, "no other large pages");
            if (level > 1) {
                assertEquals(0, entry & (PageTables.PCD | PageTables.PWT), "tables are cached");
                walk(memory, next, level - 1, virtual, tables, leaves);
            } else {
                assertEquals(virtual, next, "leaf maps identity");
                boolean mmio = virtual >= WINDOW && virtual < WINDOW_END;
                assertEquals(mmio ? PageTables.PCD | PageTables.PWT : 0, entry & (PageTables.PCD | PageTables.PWT),
                        () -> "cache bits at 0x%x".formatted(virtual));
                leaves[mmio ? 1 : 0]++;
            }
        }
    }

    @Test
    void buildZeroesStaleTableMemory() {
        long ram = 4 * MIB;
        byte[] bytes = new byte[(int) ram];
        java.util.Arrays.fill(bytes, (byte) 0xff);
        GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(bytes));
        long base = ram - PageTables.sizeFor(ram);
        long cr3 = PageTables.build(memory, base, ram);
        assertEntriesAndTableCount(new Built(memory, base, cr3), ram);
        assertEquals(-1, PageTables.translate(memory, cr3, 0));
    }

    @ParameterizedTest
    @ValueSource(longs = {0, -2 * MIB, MIB, 2 * MIB + PAGE, WINDOW + 2 * MIB, 4 * GIB, Long.MIN_VALUE})
    void refusesRamSizeNotAPositiveTwoMibMultipleBelowTheWindow(long ramSize) {
        GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[(int) (64 * PAGE)]));
        assertThrows(IllegalArgumentException.class, () -> PageTables.build(memory, 0, ramSize));
    }

    @Test
    void ramAboveThreeGibIsEitherRefusedOrStillMapped() {
        // build() accepts any 2 MiB multiple up to the MMIO window at 0xd0000000, but the window's page
        // directory takes PDPT slot 3, which RAM from 3 GiB also needs.
        long ram = 3 * GIB + 2 * MIB;
        long base = ram - PageTables.sizeFor(ram);
        GuestMemory memory = GuestMemory.of(base, MemorySegment.ofArray(new byte[(int) PageTables.sizeFor(ram)]));
        long cr3;
        try {
            cr3 = PageTables.build(memory, base, ram);
        } catch (IllegalArgumentException refused) {
            return;
        }
        assertEquals(3 * GIB, PageTables.translate(memory, cr3, 3 * GIB),
                "PageTables.build(ramSize = 3 GiB + 2 MiB) was accepted but RAM at 3 GiB is not mapped");
    }

    @Test
    void translateRefusesEntriesWithoutUserOrWriteBits() {
        Built t = buildInRam(2 * MIB);
        long pml4e = t.memory().readLong(t.cr3());
        t.memory().writeLong(t.cr3(), pml4e & ~PageTables.US);
        assertEquals(-1, PageTables.translate(t.memory(), t.cr3(), 0x1000));
        t.memory().writeLong(t.cr3(), pml4e & ~PageTables.RW);
        assertEquals(-1, PageTables.translate(t.memory(), t.cr3(), 0x1000));
        t.memory().writeLong(t.cr3(), pml4e);
        assertEquals(0x1000, PageTables.translate(t.memory(), t.cr3(), 0x1000));
    }

    @Test
    void documentedFlagValues() {
        assertEquals(0b111, PageTables.RAM_PAGE);
        assertEquals(0b111, PageTables.TABLE);
        assertEquals(0b11111, PageTables.MMIO_PAGE);
    }
}
