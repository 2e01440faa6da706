package org.nxia.vmm.internal.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.SpecialRegisters;

/** The 64-bit entry state boot.rst asks for, and what {@link LinuxBoot#load} puts where. */
class EntryTest {

    static final long RAM = 64L << 20;

    @Test
    void loadsEverythingAndMapsWhatTheKernelTouches() {
        GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[(int) RAM]));
        byte[] file = TestKernel.image();
        BzImage k = BzImage.parse(file, "test");
        byte[] initrd = new byte[3 * 4096 + 5];
        Arrays.fill(initrd, (byte) 0x5a);
        LinuxLayout layout = LinuxLayout.plan(RAM, k, initrd.length);
        LinuxBoot.load(memory, k, file, layout, initrd, "console=ttyS0", 2, 0x600, 0);

        assertArrayEquals(Arrays.copyOfRange(file, k.kernelOffset(), file.length),
                memory.read(layout.kernelAddress(), file.length - k.kernelOffset()), "payload at the load address");
        assertArrayEquals(initrd, memory.read(layout.initrdAddress(), initrd.length));
        assertEquals("console=ttyS0", new String(memory.read(LinuxLayout.CMDLINE, 13)));
        assertEquals(0, memory.readByte(LinuxLayout.CMDLINE + 13));
        assertEquals(0x5f50_4d5f, memory.readInt(LinuxLayout.EBDA), "_MP_ where Linux scans (last KiB below 640 KiB)");
        assertEquals(LinuxLayout.EBDA >> 4, Short.toUnsignedLong(memory.readShort(0x40e)), "EBDA segment in the BIOS data area");

        // identity map: the kernel's init_size, the zero page, the command line, up to 4 GiB
        for (long a : new long[] {0, LinuxLayout.ZERO_PAGE, LinuxLayout.CMDLINE, layout.kernelAddress(),
                layout.kernelEnd() - 1, layout.initrdAddress(), 0xfee0_0000L, (4L << 30) - 1}) {
            assertEquals(a, LinuxBoot.translate(memory, a), "0x" + Long.toHexString(a));
        }
        assertEquals(-1, LinuxBoot.translate(memory, 4L << 30));

        // __BOOT_CS and __BOOT_DS: flat 4 GiB, code execute/read 64-bit, data read/write
        assertEquals(0x00af_9b00_0000_ffffL, memory.readLong(LinuxLayout.GDT + 0x10));
        assertEquals(0x00cf_9300_0000_ffffL, memory.readLong(LinuxLayout.GDT + 0x18));
    }

    @Test
    void entersLongModeAtTheEntryPointWithRsiOnTheZeroPage() {
        LinuxLayout layout = LinuxLayout.plan(RAM, TestKernel.parsed(), 0);
        Registers r = LinuxBoot.registers(layout);
        assertEquals(TestKernel.PREF + 0x200, r.rip());
        assertEquals(LinuxLayout.ZERO_PAGE, r.rsi());
        assertEquals(0, r.rflags() & 0x200, "interrupts off");
        SpecialRegisters s = LinuxBoot.specialRegisters(0xfee0_0900L);
        assertEquals(0x10, s.cs().selector());
        assertEquals(true, s.cs().l());
        for (var seg : new org.nxia.vmm.spi.Segment[] {s.ds(), s.es(), s.ss()}) {
            assertEquals(0x18, seg.selector());
        }
        assertEquals(0x8000_0001L, s.cr0() & 0x8000_0001L, "PG and PE");
        assertEquals(0x20, s.cr4() & 0x20, "PAE");
        assertEquals(0x500, s.efer() & 0x500, "LME and LMA");
        assertEquals(LinuxLayout.PAGE_TABLES, s.cr3());
        assertEquals(LinuxLayout.GDT, s.gdt().base());
    }
}
