package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.MemorySegment;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.GuestMemoryException;

/** The VMM's own accesses to guest RAM, noted page by page once started. */
class WrittenPagesTest {

    private final WrittenPages memory = new WrittenPages(GuestMemory.of(0, MemorySegment.ofArray(new byte[70 * 4096])));

    private long[] drained() {
        long[] out = new long[2];
        memory.drainInto(out);
        return out;
    }

    @Test
    void notesEveryPageAViewCoversOnceStartedAndForgetsThemWhenDrained() {
        memory.writeInt(0, 1);
        assertArrayEquals(new long[] {0, 0}, drained(), "nothing before start");
        memory.start();
        memory.write(4095, new byte[2]);
        memory.writeLong(3 * 4096 + 8, 7);
        memory.readByte(65 * 4096);
        assertArrayEquals(new long[] {0b1011, 1L << 1}, drained());
        assertArrayEquals(new long[] {0, 0}, drained(), "drained");
    }

    /** RAM that starts above 0: pages count from its base, a view of exactly one page notes that page only, an empty one none. */
    @Test
    void pagesCountFromTheBaseAndAViewNotesOnlyThePagesItCovers() {
        WrittenPages high = new WrittenPages(GuestMemory.of(0x10_0000, MemorySegment.ofArray(new byte[70 * 4096])));
        assertEquals(0x10_0000, high.base());
        high.start();
        high.write(0x10_0000 + 2 * 4096, new byte[4096]);
        high.slice(0x10_0000 + 5 * 4096 + 1, 0);
        long[] out = new long[2];
        high.drainInto(out);
        assertArrayEquals(new long[] {0b100, 0}, out, "page 2 alone");
    }

    @Test
    void aRefusedAccessNotesNothing() {
        memory.start();
        assertThrows(GuestMemoryException.class, () -> memory.slice(69 * 4096, 8192));
        memory.slice(5 * 4096, 0);
        assertArrayEquals(new long[] {0, 0}, drained());
    }
}
