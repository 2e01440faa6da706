package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.api.VmSnapshot;

/** Rewriting the pages a bitmap names from a snapshot's chunks, zero where the snapshot holds none. */
class RamResetTest {

    private static final int PAGE = 4096;

    private static MemorySegment filled(int pages, int value) {
        byte[] b = new byte[pages * PAGE];
        Arrays.fill(b, (byte) value);
        return MemorySegment.ofArray(b);
    }

    private static byte at(MemorySegment ram, int page) {
        return ram.get(ValueLayout.JAVA_BYTE, (long) page * PAGE + 17);
    }

    @Test
    void rewritesOnlyTheMarkedPagesFromTheirChunkOrWithZeroes() {
        RamReset reset = new RamReset(List.of(new VmSnapshot.RamChunk(PAGE, filled(1, 0x11)),
                new VmSnapshot.RamChunk(4L * PAGE, filled(2, 0x44))), 8L * PAGE);
        MemorySegment ram = filled(8, 0xff);
        long[] bitmap = {1L | 1L << 1 | 1L << 5 | 1L << 7};
        assertEquals(4, reset.reset(bitmap, ram));
        assertArrayEquals(new long[] {0}, bitmap, "the bits are cleared");
        assertEquals(0, at(ram, 0), "a page outside every chunk was zero when saved");
        assertEquals(0x11, at(ram, 1));
        assertEquals((byte) 0xff, at(ram, 2), "an unmarked page is left alone");
        assertEquals((byte) 0xff, at(ram, 4), "an unmarked page of a chunk too");
        assertEquals(0x44, at(ram, 5), "the second page of the second chunk");
        assertEquals(0, at(ram, 7));
        assertEquals(0, reset.reset(bitmap, ram), "nothing marked, nothing rewritten");
    }

    /** Two chunks back to back: the page where one ends is the other's first. */
    @Test
    void aPageWhereOneChunkEndsIsTheNextChunksFirst() {
        RamReset reset = new RamReset(List.of(new VmSnapshot.RamChunk(PAGE, filled(1, 0x11)),
                new VmSnapshot.RamChunk(2L * PAGE, filled(1, 0x22))), 4L * PAGE);
        MemorySegment ram = filled(4, 0xff);
        assertEquals(2, reset.reset(new long[] {1L << 1 | 1L << 2}, ram));
        assertEquals(0x11, at(ram, 1));
        assertEquals(0x22, at(ram, 2));
    }

    @Test
    void aBitPastTheEndOfRamIsRefused() {
        RamReset reset = new RamReset(List.of(), 8L * PAGE);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> reset.reset(new long[] {1L << 8}, filled(8, 0)));
        assertEquals("page 8 is past the end of RAM (8 pages)", e.getMessage());
    }
}
