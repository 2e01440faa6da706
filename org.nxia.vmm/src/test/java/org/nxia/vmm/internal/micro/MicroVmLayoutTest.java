package org.nxia.vmm.internal.micro;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nxia.vmm.internal.image.GuestImageException;

class MicroVmLayoutTest {

    private static final long MIB = 1L << 20;
    private static final long PAGE = MicroVmLayout.PAGE;

    @Test
    void placesInputOutputHeapAfterImageStackBelowPageTables() {
        long ram = 16 * MIB;
        MicroVmLayout l = MicroVmLayout.plan(ram, 0x100123, 100, 5000);
        assertEquals(ram, l.ramSize());
        assertEquals(0x100123, l.imageEnd());
        assertEquals(0x101000, l.inputGpa());
        assertEquals(100, l.inputLen());
        assertEquals(0x102000, l.outputGpa());
        assertEquals(5000, l.outputCap());
        assertEquals(0x104000, l.heapGpa());
        assertEquals(ram - PageTables.sizeFor(ram), l.pageTablesBase());
        assertEquals(l.pageTablesBase(), l.stackTop());
        assertEquals(l.stackTop() - MicroVmLayout.STACK_SIZE, l.imageLimit());
        assertEquals(l.imageLimit() - l.heapGpa(), l.heapSize());
    }

    @Test
    void emptyBuffersTakeNoSpace() {
        MicroVmLayout l = MicroVmLayout.plan(16 * MIB, 0x101000, 0, 0);
        assertEquals(0x101000, l.inputGpa());
        assertEquals(0x101000, l.outputGpa());
        assertEquals(0x101000, l.heapGpa());
    }

    @Test
    void layoutIsPageAlignedOrderedAndFillsRamForManySizes() {
        Random random = new Random(11);
        for (int i = 0; i < 10_000; i++) {
            long ram = (1 + random.nextInt(1536)) * 2 * MIB;
            long imageEnd = 0x100000 + random.nextLong(Math.max(1, Math.min(ram, 64 * MIB) - 0x100000));
            long input = random.nextBoolean() ? 0 : random.nextLong(4 * MIB);
            long output = random.nextBoolean() ? 0 : random.nextLong(4 * MIB);
            MicroVmLayout l;
            try {
                l = MicroVmLayout.plan(ram, imageEnd, input, output);
            } catch (GuestImageException refused) {
                long need = MicroVmLayout.alignUp(MicroVmLayout.alignUp(MicroVmLayout.alignUp(imageEnd) + input) + output)
                        + MicroVmLayout.STACK_SIZE + PageTables.sizeFor(ram);
                assertTrue(need > ram, () -> "refused a plan that fits: " + refused.getMessage());
                continue;
            }
            for (long gpa : new long[] {l.inputGpa(), l.outputGpa(), l.heapGpa(), l.stackTop(), l.pageTablesBase(), l.imageLimit()}) {
                assertEquals(0, gpa % PAGE, "page aligned");
            }
            assertTrue(l.imageEnd() <= l.inputGpa() && l.inputGpa() - l.imageEnd() < PAGE);
            assertTrue(l.inputGpa() + l.inputLen() <= l.outputGpa());
            assertTrue(l.outputGpa() + l.outputCap() <= l.heapGpa());
            assertTrue(l.heapSize() >= 0);
            assertEquals(l.imageLimit(), l.heapGpa() + l.heapSize());
            assertEquals(l.stackTop(), l.imageLimit() + MicroVmLayout.STACK_SIZE);
            assertEquals(ram, l.pageTablesBase() + PageTables.sizeFor(ram));
        }
    }

    @Test
    void fitsWhenHeapIsExactlyEmpty() {
        long ram = 2 * MIB;
        long imageLimit = ram - PageTables.sizeFor(ram) - MicroVmLayout.STACK_SIZE;
        MicroVmLayout l = MicroVmLayout.plan(ram, imageLimit, 0, 0);
        assertEquals(0, l.heapSize());
        assertEquals(imageLimit, l.heapGpa());
    }

    @Test
    void refusesOneByteTooManyAskingForMoreMemory() {
        long ram = 2 * MIB;
        long imageLimit = ram - PageTables.sizeFor(ram) - MicroVmLayout.STACK_SIZE;
        GuestImageException e = assertThrows(GuestImageException.class, () -> MicroVmLayout.plan(ram, imageLimit, 0, 1));
        assertTrue(e.getMessage().endsWith("but the VM has 2048 KiB: give it more memory"), e.getMessage());
    }

    @Test
    void refusalMessageNamesWhatDoesNotFit() {
        GuestImageException e = assertThrows(GuestImageException.class,
                () -> MicroVmLayout.plan(2 * MIB, 0x180000, 1 << 20, 4096));
        assertEquals("the image (up to 0x180000), input (1048576 bytes), output (4096 bytes), stack and page tables"
                + " need 2652 KiB but the VM has 2048 KiB: give it more memory", e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(longs = {256L << 20, 1L << 40})
    void refusesInputLargerThanRam(long input) {
        GuestImageException e = assertThrows(GuestImageException.class, () -> MicroVmLayout.plan(16 * MIB, 0x101000, input, 0));
        assertTrue(e.getMessage().contains("give it more memory"));
    }

    @Test
    void pageTablesSizeMatchesDocumentedLevels() {
        // PML4 + PDPT + one PD per GiB + one PT per 2 MiB + the MMIO window's PD and PT
        assertEquals((2 + 1 + 1 + 2) * PAGE, PageTables.sizeFor(2 * MIB));
        assertEquals((2 + 1 + 8 + 2) * PAGE, PageTables.sizeFor(16 * MIB));
        assertEquals((2 + 1 + 512 + 2) * PAGE, PageTables.sizeFor(1024 * MIB));
        assertEquals((2 + 2 + 513 + 2) * PAGE, PageTables.sizeFor(1026 * MIB));
        assertEquals((2 + 3 + 1536 + 2) * PAGE, PageTables.sizeFor(3072 * MIB));
    }

    @Test
    void fixedRegionsMatchTheAbi() {
        assertEquals(0x1000, MicroVmLayout.BOOT_BLOCK);
        assertEquals(0x2000, MicroVmLayout.PVCS);
        assertEquals(0x3000, MicroVmLayout.GDT);
        assertEquals(0x3800, MicroVmLayout.TSS);
        assertEquals(0x8000, MicroVmLayout.CONSOLE);
        assertEquals(32768, MicroVmLayout.CONSOLE_CAP);
        assertEquals(0xd0000000L, MicroVmLayout.MMIO_WINDOW);
        assertEquals(0x200000, MicroVmLayout.MMIO_WINDOW_SIZE);
        assertEquals(64 * 1024, MicroVmLayout.STACK_SIZE);
    }
}
