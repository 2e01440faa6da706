package org.nxia.vmm.internal.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;

import org.junit.jupiter.api.Test;

class BzImageTest {

    @Test
    void offsetsAreTheBootProtocolsSetupHeader() {
        // Documentation/arch/x86/boot.rst, "The Real-Mode Kernel Header"
        assertEquals(0x1f1, BzImage.SETUP_SECTS);
        assertEquals(0x1fe, BzImage.BOOT_FLAG);
        assertEquals(0x202, BzImage.HEADER);
        assertEquals(0x206, BzImage.VERSION);
        assertEquals(0x210, BzImage.TYPE_OF_LOADER);
        assertEquals(0x211, BzImage.LOADFLAGS);
        assertEquals(0x214, BzImage.CODE32_START);
        assertEquals(0x218, BzImage.RAMDISK_IMAGE);
        assertEquals(0x21c, BzImage.RAMDISK_SIZE);
        assertEquals(0x228, BzImage.CMD_LINE_PTR);
        assertEquals(0x22c, BzImage.INITRD_ADDR_MAX);
        assertEquals(0x230, BzImage.KERNEL_ALIGNMENT);
        assertEquals(0x234, BzImage.RELOCATABLE_KERNEL);
        assertEquals(0x236, BzImage.XLOADFLAGS);
        assertEquals(0x238, BzImage.CMDLINE_SIZE);
        assertEquals(0x258, BzImage.PREF_ADDRESS);
        assertEquals(0x260, BzImage.INIT_SIZE);
        assertEquals(0x53726448, BzImage.MAGIC);
        assertEquals(0x200, BzImage.ENTRY_64);
    }

    @Test
    void parsesTheHeader() {
        byte[] file = TestKernel.image();
        BzImage k = BzImage.parse(file, "test");
        assertEquals((TestKernel.SETUP_SECTS + 1) * 512, k.kernelOffset());
        assertEquals("2.15", k.versionText());
        assertEquals(TestKernel.PREF, k.prefAddress());
        assertEquals(TestKernel.INIT_SIZE, k.initSize());
        assertEquals(TestKernel.INITRD_MAX, k.initrdAddrMax());
        assertEquals(2047, k.cmdlineSize());
        assertTrue(k.relocatable());
        assertArrayEquals(Arrays.copyOfRange(file, 0x1f1, 0x26c), k.setupHeader(), "the header up to 0x202 + the jump's offset");
    }

    @Test
    void zeroSetupSectsMeansFour() {
        byte[] file = TestKernel.image();
        file[0x1f1] = 0;
        assertEquals(5 * 512, BzImage.parse(file, "test").kernelOffset());
    }

    @Test
    void refusesATruncatedFile() {
        byte[] full = TestKernel.image();
        assertMessage("too short to hold a setup header", Arrays.copyOf(full, 0x200));
        assertMessage("is truncated: the protected-mode kernel should start at 0xa00", Arrays.copyOf(full, 0xa00));
    }

    @Test
    void refusesWrongMagic() {
        byte[] file = TestKernel.image();
        file[0x202] = 0x7f;
        assertMessage("has no \"HdrS\" magic at 0x202", file);
        byte[] flag = TestKernel.image();
        flag[0x1fe] = 0;
        assertMessage("has no 0xAA55 boot flag", flag);
    }

    @Test
    void refusesOldProtocolsAnd32BitKernels() {
        assertMessage("speaks boot protocol 2.10; 2.12 or later is needed", TestKernel.image(0x020a, 1, 4096));
        assertMessage("has no 64-bit entry point (XLF_KERNEL_64 is clear)", TestKernel.image(0x020f, 0, 4096));
    }

    @Test
    void refusesAZImageAndAnInitSizeSmallerThanThePayload() {
        byte[] z = TestKernel.image();
        z[0x211] = 0;
        assertMessage("zImage", z);
        assertMessage("less than its", TestKernel.image(0x020f, 1, (int) TestKernel.INIT_SIZE + 1));
    }

    private static void assertMessage(String part, byte[] file) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BzImage.parse(file, "k"));
        assertTrue(e.getMessage().startsWith("kernel k "), e.getMessage());
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }
}
