package org.nxia.vmm.internal.micro;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.image.ElfImage;
import org.nxia.vmm.internal.image.GuestImageException;

class ImageLoaderTest {

    private static final long RAM = 2L << 20;

    private final byte[] ram = new byte[(int) RAM];
    private final GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(ram));

    @Test
    void copiesFileBytesAndZeroFillsBss() {
        Arrays.fill(ram, (byte) 0xaa);
        ElfBuilder b = new ElfBuilder();
        b.load(0x100000, new byte[] {(byte) 0xf4, 1, 2, 3}, 0x1800, ElfBuilder.PF_R | ElfBuilder.PF_X);
        b.load(0x102000, new byte[] {9, 8}, 0x10, ElfBuilder.PF_R | ElfBuilder.PF_W);
        ElfImage image = ElfImage.parse(b.build(), "g.elf");
        MicroVmLayout layout = MicroVmLayout.plan(RAM, image.end(), 0, 0);

        ImageLoader.load(image, memory, layout, "g.elf");

        assertEquals((byte) 0xaa, ram[0xfffff], "below the image untouched");
        assertEquals((byte) 0xf4, ram[0x100000]);
        assertEquals(3, ram[0x100003]);
        for (int i = 0x100004; i < 0x101800; i++) {
            assertEquals(0, ram[i], "bss zero at 0x" + Integer.toHexString(i));
        }
        assertEquals((byte) 0xaa, ram[0x101800], "the gap between segments untouched");
        assertEquals((byte) 0xaa, ram[0x101fff]);
        assertEquals(9, ram[0x102000]);
        assertEquals(8, ram[0x102001]);
        for (int i = 0x102002; i < 0x102010; i++) {
            assertEquals(0, ram[i]);
        }
        assertEquals((byte) 0xaa, ram[0x102010], "past the last segment untouched");
    }

    @Test
    void copiesTheRightFileBytesWhenOffsetsAreUnordered() {
        ElfBuilder b = new ElfBuilder();
        b.load(0x180000, new byte[] {5, 6, 7}, 3, ElfBuilder.PF_R);
        b.load(0x100000, new byte[] {(byte) 0xf4, 0x11}, 2, ElfBuilder.PF_R | ElfBuilder.PF_X);
        ElfImage image = ElfImage.parse(b.build(), "g.elf");
        ImageLoader.load(image, memory, MicroVmLayout.plan(RAM, image.end(), 0, 0), "g.elf");
        assertEquals(0x11, ram[0x100001]);
        assertEquals(5, ram[0x180000]);
        assertEquals(7, ram[0x180002]);
    }

    @Test
    void loadsSegmentEndingExactlyAtImageLimit() {
        MicroVmLayout layout = MicroVmLayout.plan(RAM, 0x101000, 0, 0);
        ElfBuilder b = ElfBuilder.minimal();
        b.load(0x101000, new byte[] {1}, layout.imageLimit() - 0x101000, ElfBuilder.PF_R | ElfBuilder.PF_W);
        ElfImage image = ElfImage.parse(b.build(), "g.elf");
        ImageLoader.load(image, memory, layout, "g.elf");
        assertEquals(1, ram[0x101000]);
    }

    @Test
    void refusesSegmentBeyondImageLimitWithoutWritingAnything() {
        MicroVmLayout layout = MicroVmLayout.plan(RAM, 0x101000, 0, 0);
        ElfBuilder b = ElfBuilder.minimal();
        b.load(0x101000, new byte[] {1}, layout.imageLimit() - 0x101000 + 1, ElfBuilder.PF_R | ElfBuilder.PF_W);
        ElfImage image = ElfImage.parse(b.build(), "g.elf");
        GuestImageException e = assertThrows(GuestImageException.class, () -> ImageLoader.load(image, memory, layout, "g.elf"));
        assertTrue(e.getMessage().startsWith("g.elf: segment [0x101000, 0x"), e.getMessage());
        assertTrue(e.getMessage().endsWith("in 2048 KiB of RAM: give the VM more memory"), e.getMessage());
        assertEquals(0, ram[0x100000], "the first segment was not loaded either");
    }

    @Test
    void refusesSegmentFarBeyondRam() {
        long vaddr = Long.MAX_VALUE - 0x1000;
        ElfBuilder b = ElfBuilder.minimal().entry(vaddr);
        b.segment(0).vaddr = vaddr;
        ElfImage image = ElfImage.parse(b.build(), "g.elf");
        MicroVmLayout layout = MicroVmLayout.plan(RAM, 0x101000, 0, 0);
        assertThrows(GuestImageException.class, () -> ImageLoader.load(image, memory, layout, "g.elf"));
    }

    @Test
    void imageEndingNearTopOfAddressSpaceIsRefusedByPlanOrLoader() {
        // MicroVm plans the layout from image.end() and then loads: together they must refuse.
        long vaddr = Long.MAX_VALUE - 0x1000;
        ElfBuilder b = ElfBuilder.minimal().entry(vaddr);
        b.segment(0).vaddr = vaddr;
        ElfImage image = ElfImage.parse(b.build(), "g.elf");
        assertThrows(GuestImageException.class, () -> {
            MicroVmLayout layout = MicroVmLayout.plan(RAM, image.end(), 0, 0);
            ImageLoader.load(image, memory, layout, "g.elf");
        });
    }
}
