package org.nxia.device.virtio.internal.pmem;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import org.junit.jupiter.api.Test;

/** Linux's device-DAX info block, field by field at the offsets of struct nd_pfn_sb (drivers/nvdimm/pfn.h). */
class DeviceDaxInfoTest {

    static final long MIB = 1L << 20;

    @Test
    void theFieldsSayDaxModeRamDataFrom2MibIn2MibPages() {
        ByteBuffer b = ByteBuffer.wrap(DeviceDaxInfo.block("px", 64 * MIB)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(4096, b.capacity());
        assertEquals("NVDIMM_DAX_INFO\0", new String(b.array(), 0, 16, StandardCharsets.US_ASCII), "signature");
        assertTrue(!allZero(b.array(), 16, 32), "a uuid: the kernel copies it as the dax device's");
        assertTrue(allZero(b.array(), 32, 48), "parent_uuid: a label-less namespace's is the null uuid");
        assertEquals(0, b.getInt(48), "flags");
        assertEquals(1, b.getShort(52), "version_major");
        assertEquals(4, b.getShort(54), "version_minor: 1.4 has align, page_size and page_struct_size");
        assertEquals(2 * MIB, b.getLong(56), "dataoff");
        assertEquals((64 - 2) * MIB / 4096, b.getLong(64), "npfns: the pages past dataoff");
        assertEquals(1, b.getInt(72), "mode: PFN_MODE_RAM");
        assertEquals(0, b.getInt(76), "start_pad");
        assertEquals(0, b.getInt(80), "end_trunc");
        assertEquals(2 * MIB, b.getInt(84), "align");
        assertEquals(4096, b.getInt(88), "page_size");
        assertEquals(64, b.getShort(92), "page_struct_size");
        assertTrue(allZero(b.array(), 94, 4088), "padding (version 1.3: must be zero)");
    }

    @Test
    void theChecksumIsLinuxsFletcher64WithTheFieldZero() {
        byte[] block = DeviceDaxInfo.block("px", 8 * MIB);
        long stored = ByteBuffer.wrap(block).order(ByteOrder.LITTLE_ENDIAN).getLong(4088);
        byte[] zeroed = block.clone();
        Arrays.fill(zeroed, 4088, 4096, (byte) 0);
        assertEquals(kernelFletcher64(zeroed), stored);
        byte[] broken = block.clone();
        broken[60] ^= 1;
        assertNotEquals(stored, DeviceDaxInfo.fletcher64(broken), "a changed dataoff changes the sum");
    }

    @Test
    void fletcher64KnownAnswers() {
        assertEquals(0, DeviceDaxInfo.fletcher64(new byte[4096]));
        ByteBuffer ones = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 1024; i++) {
            ones.putInt(i == 1022 || i == 1023 ? 0 : 1);   // the checksum's own words do not count
        }
        // lo counts the 1022 ones; hi sums lo after each word: 1 + 2 + ... + 1022, then 1022 twice
        assertEquals((1022L * 1023 / 2 + 2 * 1022) << 32 | 1022, DeviceDaxInfo.fletcher64(ones.array()));
        ByteBuffer big = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 1022; i++) {
            big.putInt(0xffff_ffff);
        }
        assertEquals(kernelFletcher64(big.array()), DeviceDaxInfo.fletcher64(big.array()), "lo wraps at 32 bits, hi does not");
    }

    @Test
    void theSameRegionGetsTheSameBlockAndAnotherAnotherId() {
        assertArrayEquals(DeviceDaxInfo.block("px", 8 * MIB), DeviceDaxInfo.block("px", 8 * MIB));
        assertNotEquals(Arrays.toString(Arrays.copyOfRange(DeviceDaxInfo.block("px", 8 * MIB), 16, 32)),
                Arrays.toString(Arrays.copyOfRange(DeviceDaxInfo.block("py", 8 * MIB), 16, 32)));
    }

    @Test
    void aRegionWithNoRoomPastTheFirst2MibOrNotIn2MibStepsIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> DeviceDaxInfo.block("px", 2 * MIB));
        assertThrows(IllegalArgumentException.class, () -> DeviceDaxInfo.block("px", 5 * MIB));
        assertEquals(1, ByteBuffer.wrap(DeviceDaxInfo.block("px", 4 * MIB)).order(ByteOrder.LITTLE_ENDIAN).getLong(64) / 512);
    }

    /** nd_fletcher64 as the kernel writes it: u32 lo, u64 hi, words little-endian. */
    private static long kernelFletcher64(byte[] bytes) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long lo = 0;
        long hi = 0;
        for (int i = 0; i < bytes.length / 4; i++) {
            lo = (lo + Integer.toUnsignedLong(b.getInt(4 * i))) & 0xffff_ffffL;
            hi += lo;
        }
        return hi << 32 | lo;
    }

    private static boolean allZero(byte[] b, int from, int to) {
        for (int i = from; i < to; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return true;
    }
}
