package org.nxia.vmm.internal.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.internal.acpi.AcpiPlatform;
import org.nxia.vmm.internal.acpi.AcpiTables;
import org.nxia.vmm.spi.GuestMemory;

/**
 * The Linux loader's checks at their edges: a bzImage header one byte either
 * side of each limit, a layout that fits exactly, and the boot page tables'
 * walk over entries that are not present or not large pages.
 */
class LinuxBoundsTest {

    private static final long MIB = 1L << 20;

    private static void refused(String part, byte[] file) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BzImage.parse(file, "k"));
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }

    private static byte[] withInt(byte[] file, int at, int value) {
        ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).putInt(at, value);
        return file;
    }

    private static byte[] withLong(byte[] file, int at, long value) {
        ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).putLong(at, value);
        return file;
    }

    @Test
    void aFileJustLongEnoughForTheHeaderGetsPastTheLengthCheck() {
        byte[] full = TestKernel.image();
        refused("too short to hold a setup header", Arrays.copyOf(full, BzImage.INIT_SIZE + 3));
        refused("is truncated", Arrays.copyOf(full, BzImage.INIT_SIZE + 4));
    }

    @Test
    void protocol212IsTheOldestAccepted() {
        assertEquals(0x020c, BzImage.parse(TestKernel.image(0x020c, 1, 4096), "k").version());
        refused("speaks boot protocol 2.11", TestKernel.image(0x020b, 1, 4096));
    }

    /** The header must hold init_size (0x260..0x263), the last field read: the jump's target is the header's end, exclusive. */
    @Test
    void theSetupHeaderMustHoldInitSize() {
        byte[] shortHeader = TestKernel.image();
        shortHeader[BzImage.JUMP + 1] = (byte) (BzImage.INIT_SIZE + 3 - BzImage.HEADER);
        refused("has a setup header ending at 0x263", shortHeader);
        byte[] justEnough = TestKernel.image();
        justEnough[BzImage.JUMP + 1] = (byte) (BzImage.INIT_SIZE + 4 - BzImage.HEADER);   // refused by one byte until 2026-12-07
        assertEquals(0x264 - BzImage.SETUP_SECTS, BzImage.parse(justEnough, "k").setupHeader().length);
    }

    @Test
    void initSizeMayEqualThePayload() {
        int payload = 4096;
        byte[] exact = withInt(TestKernel.image(0x020f, 1, payload), BzImage.INIT_SIZE, payload);
        assertEquals(payload, BzImage.parse(exact, "k").initSize());
        refused("says init_size is 4095 bytes, less than its 4096-byte payload",
                withInt(TestKernel.image(0x020f, 1, payload), BzImage.INIT_SIZE, payload - 1));
    }

    @Test
    void theLoadAddressMayBeOneMibToFourGibAndAlignedWhenRelocatable() {
        byte[] oneMib = withLong(TestKernel.image(), BzImage.PREF_ADDRESS, MIB);
        oneMib[BzImage.RELOCATABLE_KERNEL] = 0;   // 1 MiB is not 2 MiB aligned: fine for a kernel that stays put
        assertEquals(MIB, BzImage.parse(oneMib, "k").prefAddress());
        refused("prefers to load at 0xfffff", withLong(TestKernel.image(), BzImage.PREF_ADDRESS, MIB - 1));
        assertEquals(1L << 32, BzImage.parse(withLong(TestKernel.image(), BzImage.PREF_ADDRESS, 1L << 32), "k").prefAddress());
        refused("above 4 GiB", withLong(TestKernel.image(), BzImage.PREF_ADDRESS, (1L << 32) + (2 * MIB)));
        refused("not aligned to 0x200000", withLong(TestKernel.image(), BzImage.PREF_ADDRESS, 3 * MIB));
        byte[] noAlignment = withInt(withLong(TestKernel.image(), BzImage.PREF_ADDRESS, 3 * MIB), BzImage.KERNEL_ALIGNMENT, 0);
        assertEquals(3 * MIB, BzImage.parse(noAlignment, "k").prefAddress(), "a relocatable kernel without an alignment");
    }

    private static BzImage kernel(long pref, long initSize, long initrdAddrMax) {
        BzImage k = TestKernel.parsed();
        return new BzImage(k.setupHeader(), k.kernelOffset(), k.version(), initrdAddrMax, k.kernelAlignment(), k.relocatable(),
                k.xloadflags(), k.cmdlineSize(), pref, initSize);
    }

    @Test
    void theKernelMayEndAtTheEndOfRamAndTheMessageSaysHowMuchItNeeds() {
        BzImage k = kernel(16 * MIB, 8 * MIB + 1, TestKernel.INITRD_MAX);
        assertEquals(24 * MIB + 1, LinuxLayout.plan(24 * MIB + 1, k, 0).kernelEnd());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LinuxLayout.plan(22 * MIB, k, 0));
        assertEquals("the kernel needs RAM up to 25 MiB (loaded at 0x1000000, init_size 9 MiB) but the VM has 22 MiB: give it more memory",
                e.getMessage());
        IllegalArgumentException exact = assertThrows(IllegalArgumentException.class,
                () -> LinuxLayout.plan(22 * MIB, kernel(16 * MIB, 8 * MIB, TestKernel.INITRD_MAX), 0));
        assertTrue(exact.getMessage().startsWith("the kernel needs RAM up to 24 MiB (loaded at 0x1000000, init_size 8 MiB)"),
                exact.getMessage());
    }

    @Test
    void theInitramfsGoesBelowItsLimitAndMayTouchTheKernel() {
        BzImage k = kernel(16 * MIB, 8 * MIB, 512 * MIB - 1);
        LinuxLayout high = LinuxLayout.plan(1024 * MIB, k, 4096);
        assertEquals(512 * MIB - 4096, high.initrdAddress(), "the last page below initrd_addr_max + 1");
        LinuxLayout touching = LinuxLayout.plan(32 * MIB, kernel(16 * MIB, 8 * MIB, TestKernel.INITRD_MAX), 8 * MIB);
        assertEquals(24 * MIB, touching.initrdAddress(), "right at the kernel's end");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LinuxLayout.plan(32 * MIB, kernel(16 * MIB, 8 * MIB, TestKernel.INITRD_MAX), 8 * MIB + 1));
        assertEquals("the initramfs (9 MiB) does not fit between the kernel's end (0x1800000) and 0x2000000: give the VM more memory",
                e.getMessage());
    }

    @Test
    void theZeroPageAndTheBiosDataAreaAreWritten() {
        GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[(int) (32 * MIB)]));
        BzImage k = TestKernel.parsed();
        LinuxBoot.load(memory, k, TestKernel.image(), LinuxLayout.plan(32 * MIB, k, 0), new byte[0], "quiet", 1, 0x600, 0);
        assertEquals(LinuxLayout.EBDA >> 10, Short.toUnsignedLong(memory.readShort(LinuxBoot.BDA_BASE_MEMORY_KIB)), "base memory in KiB");
        assertEquals(BzImage.MAGIC, memory.readInt(LinuxLayout.ZERO_PAGE + BzImage.HEADER), "the setup header in the zero page");
    }

    @Test
    void acpiTablesGoOnlyWhereTheLayoutReservesRoomAndTheZeroPagePointsAtThem() {
        GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[(int) (32 * MIB)]));
        BzImage k = TestKernel.parsed();
        LinuxLayout layout = LinuxLayout.plan(32 * MIB, k, 0);
        AcpiPlatform platform = new AcpiPlatform(1, MpTable.LOCAL_APIC, MpTable.IOAPIC, 1, MpTable.IOAPIC_PINS, List.of(), List.of(), List.of());
        AcpiTables elsewhere = AcpiTables.build(LinuxLayout.ACPI_TABLES + 16, platform);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LinuxBoot.load(memory, k, TestKernel.image(),
                layout, new byte[0], "", 1, 0x600, 0, Optional.of(elsewhere)));
        assertTrue(e.getMessage().contains("room for"), e.getMessage());

        AcpiTables tables = LinuxBoot.acpiTables(1, List.of());
        LinuxBoot.load(memory, k, TestKernel.image(), layout, new byte[0], "", 1, 0x600, 0, Optional.of(tables));
        assertEquals(LinuxLayout.ACPI_TABLES, memory.readLong(LinuxLayout.ZERO_PAGE + BootParams.ACPI_RSDP_ADDR));
        assertEquals(Arrays.toString(tables.bytes()), Arrays.toString(memory.read(LinuxLayout.ACPI_TABLES, tables.bytes().length)));
        assertTrue(LinuxLayout.ACPI_TABLES + LinuxLayout.ACPI_TABLES_MAX <= LinuxLayout.HIGH_RAM, "inside the legacy hole");
        assertTrue(LinuxLayout.ACPI_TABLES >= LinuxLayout.LEGACY_HOLE, "inside the legacy hole");
    }

    @Test
    void theBootTablesWalkRefusesEntriesThatAreNotPresentOrNotLargePages() {
        GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[(int) (2 * MIB)]));
        LinuxBoot.writePageTables(memory);
        long pml4 = LinuxLayout.PAGE_TABLES;
        long pdpt = pml4 + LinuxLayout.PAGE;
        long pd = pdpt + LinuxLayout.PAGE;
        for (long a : new long[] {0x1234, (1L << 30) + 0x20_5678, (3L << 30) + 0x12_3456}) {
            assertEquals(a, LinuxBoot.translate(memory, a), "0x" + Long.toHexString(a));
        }
        assertEquals(-1, LinuxBoot.translate(memory, 1L << 39), "the second PML4 slot is empty");

        memory.writeLong(pd + 8, 0x20_0000L | LinuxBoot.PS);              // a large page, not present
        assertEquals(-1, LinuxBoot.translate(memory, 0x20_0000L));
        memory.writeLong(pd + 16, 0x40_0000L | LinuxBoot.P | LinuxBoot.RW);  // present, but a 4 KiB table
        assertEquals(-1, LinuxBoot.translate(memory, 0x40_0000L));
        memory.writeLong(pdpt + 8, (pd + LinuxLayout.PAGE) | LinuxBoot.RW);  // the second GiB's directory, not present
        assertEquals(-1, LinuxBoot.translate(memory, 1L << 30));
        memory.writeLong(pml4, pdpt | LinuxBoot.RW);                         // the PDPT, not present
        assertEquals(-1, LinuxBoot.translate(memory, 0x1234));
    }

    /**
     * The tables stay in their six pages (nothing written in the page after them), and the walk
     * reads the PML4 entry the address selects, not one beside the tables (filled with present
     * large pages here, so a wrong read would translate).
     */
    @Test
    void theBootTablesStayInTheirPagesAndTheWalkReadsTheirOwnEntries() {
        GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[(int) (2 * MIB)]));
        long tablesEnd = LinuxLayout.PAGE_TABLES + (2 + LinuxBoot.IDENTITY_GIB) * LinuxLayout.PAGE;
        // the page below: entries that lead to the real PDPT, so a walk that read one would translate
        long toPdpt = (LinuxLayout.PAGE_TABLES + LinuxLayout.PAGE) | LinuxBoot.P | LinuxBoot.RW;
        for (long at = LinuxLayout.PAGE_TABLES - LinuxLayout.PAGE; at < LinuxLayout.PAGE_TABLES; at += 8) {
            memory.writeLong(at, toPdpt);
        }
        memory.writeLong(tablesEnd, 0x5eed);
        LinuxBoot.writePageTables(memory);
        assertEquals(0x5eed, memory.readLong(tablesEnd), "the page after the tables is not written");
        assertEquals(-1, LinuxBoot.translate(memory, 1L << 39), "the second PML4 slot, empty, not the page below the tables");
        assertEquals(-1, LinuxBoot.translate(memory, 511L << 39));
    }

    @Test
    void aFullE820MapAndTheMpTablesCpuCountsAtTheirLimits() {
        BzImage k = TestKernel.parsed();
        LinuxLayout layout = LinuxLayout.plan(256 * MIB, k, 0);
        List<E820.Entry> full = new ArrayList<>();
        for (int i = 0; i < E820.MAX_ENTRIES; i++) {
            full.add(new E820.Entry(i * 2 * MIB, MIB, 1));
        }
        assertEquals(BootParams.SIZE, BootParams.build(k, layout, "", full).length, "128 entries fit");
        full.add(new E820.Entry(1L << 32, MIB, 1));
        assertThrows(IllegalArgumentException.class, () -> BootParams.build(k, layout, "", full));
        MpTable.build(LinuxLayout.EBDA, 1, 0x600, 0);
        MpTable.build(LinuxLayout.EBDA, 254, 0x600, 0);
        for (int cpus : new int[] {0, 255}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MpTable.build(LinuxLayout.EBDA, cpus, 0x600, 0));
            assertEquals("an MP table describes 1 to 254 CPUs, not " + cpus, e.getMessage());
        }
    }
}
