package org.nxia.vmm.internal.micro;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.internal.bus.Bus;

/**
 * The micro-VM's tables at their edges: the boot block's MMIO and portal
 * tables, the output length a guest claims, the page-table walk over entries
 * without R/W or U/S, and the port space's ends.
 */
class MicroBoundsTest {

    private static final long B = MicroVmLayout.BOOT_BLOCK;

    private final GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[32 << 20]));
    private final MicroVmLayout layout = MicroVmLayout.plan(16 << 20, 0x101000, 0, 4096);

    @Test
    void theMmioTableHoldsUpTo32WindowsInOrder() {
        List<Long> bases = new ArrayList<>();
        for (int i = 0; i < BootBlock.MAX_MMIO_WINDOWS; i++) {
            bases.add(MicroVmLayout.MMIO_WINDOW + i * 4096L);
        }
        BootBlock.writeMmioTable(memory, bases);
        assertEquals(32, memory.readInt(B + BootBlock.MMIO_COUNT));
        for (int i = 0; i < 32; i++) {
            assertEquals(bases.get(i), memory.readLong(B + BootBlock.MMIO_BASES + 8L * i), "window " + i);
        }
        bases.add(0L);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BootBlock.writeMmioTable(memory, bases));
        assertEquals("a micro-VM has room for 32 MMIO devices, not 33", e.getMessage());
    }

    @Test
    void portalSlotsAre0To15AndTheCountOnlyGrows() {
        BootBlock.write(memory, layout, 0, 0);
        BootBlock.writePortal(memory, 15, "last", 0xc000_0000L, 4096, 0, BootBlock.PORTAL_MAPPED);
        assertEquals(16, memory.readInt(B + BootBlock.PORTAL_COUNT));
        assertEquals(BootBlock.PORTAL_MAPPED, memory.readInt(B + BootBlock.PORTALS + 15L * BootBlock.PORTAL_ENTRY + 24));
        BootBlock.writePortal(memory, 2, "low", 0xc020_0000L, 4096, 0, BootBlock.PORTAL_MAPPED);
        assertEquals(16, memory.readInt(B + BootBlock.PORTAL_COUNT), "a lower slot leaves the count");
        assertEquals(0xc020_0000L, memory.readLong(B + BootBlock.PORTALS + 2L * BootBlock.PORTAL_ENTRY));
        for (int slot : new int[] {-1, 16}) {
            assertThrows(IllegalArgumentException.class, () -> BootBlock.writePortal(memory, slot, "x", 0, 0, 0, 0));
        }
    }

    @Test
    void theOutputLengthIsTheClaimUnlessNegativeOrPastTheCapacity() {
        BootBlock.write(memory, layout, 0, 0);
        for (long[] c : new long[][] {{0, 0}, {1, 1}, {4096, 4096}, {4097, 4096}, {-1, 4096}, {Long.MIN_VALUE, 4096}}) {
            memory.writeLong(B + BootBlock.OUTPUT_LEN, c[0]);
            assertEquals(c[1], BootBlock.outputLength(memory, layout), "a claim of " + c[0]);
        }
    }

    @Test
    void theWalkRefusesEntriesWithoutWriteOrUserAccessAndFollowsLargePortalPages() {
        long cr3 = PageTables.build(memory, layout.pageTablesBase(), layout.ramSize());
        long portal = MicroVmLayout.PORTAL_WINDOW + 0x21_2345;
        assertEquals(portal, PageTables.translate(memory, cr3, portal), "2 MiB pages in the portal window");
        long pml4e = memory.readLong(cr3);
        memory.writeLong(cr3, pml4e & ~PageTables.RW);
        assertEquals(-1, PageTables.translate(memory, cr3, 0x10_0000), "no R/W");
        memory.writeLong(cr3, pml4e & ~PageTables.US);
        assertEquals(-1, PageTables.translate(memory, cr3, 0x10_0000), "no U/S");
        memory.writeLong(cr3, pml4e & ~PageTables.P);
        assertEquals(-1, PageTables.translate(memory, cr3, 0x10_0000), "not present");
        memory.writeLong(cr3, pml4e);
        assertEquals(0x10_0000, PageTables.translate(memory, cr3, 0x10_0000));
    }

    @Test
    void thePortSpaceEndsAt0xffff() {
        Bus bus = new Bus();
        bus.addPorts(0xffff, 1, null);
        bus.addPorts(0, 0x100, null);
        assertThrows(IllegalArgumentException.class, () -> bus.addPorts(0xfffe, 3, null));
        assertThrows(IllegalArgumentException.class, () -> bus.addPorts(0x10000, 1, null));
        assertThrows(IllegalArgumentException.class, () -> bus.addPorts(-1, 1, null));
        assertThrows(IllegalArgumentException.class, () -> bus.addPorts(0x200, 0, null));
        Bus whole = new Bus();
        whole.addPorts(0, 0x10000, null);
        assertThrows(IllegalArgumentException.class, () -> new Bus().addPorts(0, 0x10001, null));
    }
}
