package org.nxia.vmm.internal.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;

class BootParamsTest {

    static final long MIB = 1L << 20;

    @Test
    void zeroPageFieldsSitWhereBootParamsPutsThem() {
        // arch/x86/include/uapi/asm/bootparam.h
        assertEquals(0x0c0, BootParams.EXT_RAMDISK_IMAGE);
        assertEquals(0x0c4, BootParams.EXT_RAMDISK_SIZE);
        assertEquals(0x0c8, BootParams.EXT_CMD_LINE_PTR);
        assertEquals(0x1e8, BootParams.E820_ENTRIES);
        assertEquals(0x2d0, BootParams.E820_TABLE);
        assertEquals(128, E820.MAX_ENTRIES);
        assertEquals(20, E820.ENTRY_SIZE);
        assertTrue(BootParams.E820_TABLE + E820.MAX_ENTRIES * E820.ENTRY_SIZE <= BootParams.SIZE);
    }

    @Test
    void carriesTheHeaderTheLoaderFieldsAndTheMap() {
        BzImage k = TestKernel.parsed();
        LinuxLayout layout = LinuxLayout.plan(256 * MIB, k, 5 * MIB);
        List<E820.Entry> map = E820.plan(256 * MIB);
        byte[] page = BootParams.build(k, layout, "console=ttyS0", map);
        ByteBuffer b = ByteBuffer.wrap(page).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(4096, page.length);
        assertEquals(0x5372_6448, b.getInt(0x202), "setup header copied at 0x1f1");
        assertEquals(0x020f, b.getShort(0x206));
        assertEquals((byte) 0xff, b.get(0x210), "type_of_loader");
        assertEquals(LinuxLayout.CMDLINE, b.getInt(0x228));
        assertEquals(layout.initrdAddress(), b.getInt(0x218));
        assertEquals(5 * MIB, b.getInt(0x21c));
        assertEquals(0, b.getInt(0x0c0));
        assertEquals(layout.kernelAddress(), b.getInt(0x214), "code32_start");
        assertEquals(map.size(), b.get(0x1e8));
        for (int i = 0; i < map.size(); i++) {
            int at = 0x2d0 + i * 20;
            assertEquals(map.get(i).address(), b.getLong(at));
            assertEquals(map.get(i).size(), b.getLong(at + 8));
            assertEquals(map.get(i).type(), b.getInt(at + 16));
        }
        assertEquals(0, b.getInt(0x2d0 + map.size() * 20 + 16), "nothing after the last entry");
    }

    @Test
    void commandLineUpToTheKernelsLimit() {
        BzImage k = TestKernel.parsed();
        LinuxLayout layout = LinuxLayout.plan(256 * MIB, k, 0);
        String longest = "x".repeat((int) k.cmdlineSize());
        BootParams.build(k, layout, longest, E820.plan(256 * MIB));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BootParams.build(k, layout, longest + "y", E820.plan(256 * MIB)));
        assertEquals("the kernel command line is 2048 bytes; this kernel accepts at most 2047", e.getMessage());
        byte[] text = BootParams.cmdlineBytes("abc");
        assertArrayEquals(new byte[] {'a', 'b', 'c', 0}, text);
    }

    @Test
    void refusesAMapTooLongForTheZeroPage() {
        BzImage k = TestKernel.parsed();
        E820.Entry[] many = new E820.Entry[129];
        Arrays.fill(many, new E820.Entry(0, 4096, E820.RAM));
        assertThrows(IllegalArgumentException.class,
                () -> BootParams.build(k, LinuxLayout.plan(256 * MIB, k, 0), "", List.of(many)));
    }
}
