package org.nxia.portal.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.Set;
import java.util.function.Consumer;

import org.junit.jupiter.api.Test;
import org.nxia.portal.api.PortalException;
import org.nxia.portal.api.Ref;

/**
 * The Portal structures at their limits: each bound's last accepted value, the error just past
 * it (a limit too large for the test's memory is told apart by the error that comes after the
 * bound: the segment's size), and what a hostile peer can do to shared metadata.
 */
class PortalBoundsTest {

    private static String refused(Runnable r) {
        return assertThrows(PortalException.class, r::run).getMessage();
    }

    private static void withSegment(long size, Consumer<MemorySegment> body) {
        try (Arena arena = Arena.ofConfined()) {
            body.accept(arena.allocate(size, 64));
        }
    }

    @Test
    void aReadOnlySegmentIsRefusedByEveryFormatAndAttach() {
        withSegment(1 << 16, s -> {
            SpscRing.format(s, 1024);
            MemorySegment ro = s.asReadOnly();
            assertTrue(refused(() -> SpscRing.format(ro, 1024)).contains("read-only"));
            assertTrue(refused(() -> SpscRing.attach(ro)).contains("read-only"));
            MpmcRing.format(s, 4, 64);
            assertTrue(refused(() -> MpmcRing.format(ro, 4, 64)).contains("read-only"));
            assertTrue(refused(() -> MpmcRing.attach(ro)).contains("read-only"));
            BlockArena.format(s, 64);
            assertTrue(refused(() -> BlockArena.attach(ro)).contains("read-only"));
        });
    }

    @Test
    void spscCapacityBounds() {
        withSegment(1 << 16, s -> {
            assertEquals(SpscRing.MIN_CAPACITY, SpscRing.format(s, SpscRing.MIN_CAPACITY).capacity());
            assertTrue(refused(() -> SpscRing.format(s, SpscRing.MIN_CAPACITY / 2)).contains("must be a power of two in [64, "));
            assertTrue(refused(() -> SpscRing.format(s, 100)).contains("capacity 100 must be a power of two"));
            // the largest capacity passes its bound and is refused for the segment's size only
            assertTrue(refused(() -> SpscRing.format(s, SpscRing.MAX_CAPACITY)).contains("needs "));
            assertTrue(refused(() -> SpscRing.format(s, SpscRing.MAX_CAPACITY * 2)).contains("must be a power of two"));
            // a segment of exactly the header: past the length check, refused for what the header claims
            SpscRing.format(s, 1024);
            String header = refused(() -> SpscRing.attach(s.asSlice(0, SpscRing.DATA_OFFSET)));
            assertFalse(header.contains("shorter than"), header);
            assertTrue(refused(() -> SpscRing.attach(s.asSlice(0, SpscRing.DATA_OFFSET - 8))).contains("shorter than"));
        });
    }

    @Test
    void mpmcGeometryBounds() {
        withSegment(1 << 16, s -> {
            assertEquals(MpmcRing.MIN_SLOTS, MpmcRing.format(s, MpmcRing.MIN_SLOTS, MpmcRing.MIN_SLOT_SIZE).slots());
            assertTrue(refused(() -> MpmcRing.format(s, 1, 64)).contains("slot count 1"));
            assertTrue(refused(() -> MpmcRing.format(s, 4, 32)).contains("slot size 32"));
            assertTrue(refused(() -> MpmcRing.format(s, 4, 96 + 1)).contains("slot size 97"));
            assertTrue(refused(() -> MpmcRing.format(s, MpmcRing.MAX_SLOTS, 64)).contains("need "));
            assertTrue(refused(() -> MpmcRing.format(s, MpmcRing.MAX_SLOTS * 2, 64)).contains("slot count"));
            assertTrue(refused(() -> MpmcRing.format(s, 2, MpmcRing.MAX_SLOT_SIZE)).contains("need "));
            assertTrue(refused(() -> MpmcRing.format(s, 2, MpmcRing.MAX_SLOT_SIZE + 64)).contains("slot size"));
            assertTrue(refused(() -> MpmcRing.format(s, 6, 64)).contains("slot count 6"), "a slot count not a power of two");
            MpmcRing.format(s, 4, 64);
            String header = refused(() -> MpmcRing.attach(s.asSlice(0, MpmcRing.DATA_OFFSET)));
            assertFalse(header.contains("shorter than"), header);
        });
    }

    /** A peer that wrote a length past the slot: the error names the slot it found it in. */
    @Test
    void aCorruptMpmcLengthNamesItsSlot() {
        withSegment(1 << 16, s -> {
            MpmcRing ring = MpmcRing.format(s, 4, 64);
            try (Arena a = Arena.ofConfined()) {
                MemorySegment m = a.allocate(8);
                assertTrue(ring.offer(m));
                s.set(ValueLayout.JAVA_INT, MpmcRing.DATA_OFFSET + 8, 1 << 20);
                String e = refused(() -> ring.poll(a.allocate(64)));
                assertTrue(e.contains("corrupt message length 1048576 in slot 0"), e);
            }
        });
    }

    @Test
    void arenaBounds() {
        withSegment(1 << 16, s -> {
            assertEquals(BlockArena.MIN_BLOCK_SIZE, BlockArena.format(s, BlockArena.MIN_BLOCK_SIZE).blockSize());
            assertTrue(refused(() -> BlockArena.format(s, 32)).contains("block size 32"));
            assertTrue(refused(() -> BlockArena.format(s, BlockArena.MAX_BLOCK_SIZE)).contains("cannot hold one block"));
            assertTrue(refused(() -> BlockArena.format(s, BlockArena.MAX_BLOCK_SIZE * 2)).contains("block size"));
            BlockArena.format(s, 64);
            String header = refused(() -> BlockArena.attach(s.asSlice(0, BlockArena.HEADER_SIZE)));
            assertFalse(header.contains("shorter than"), header);
            assertTrue(refused(() -> BlockArena.attach(s.asSlice(0, BlockArena.HEADER_SIZE - 8))).contains("shorter than"));
            // the largest count a header may claim passes its bound and is refused for the segment's size
            s.set(ValueLayout.JAVA_INT, BlockArena.OFF_BLOCK_COUNT, (int) BlockArena.MAX_BLOCK_COUNT);
            String most = refused(() -> BlockArena.attach(s));
            assertTrue(most.contains("header claims " + BlockArena.MAX_BLOCK_COUNT + " blocks"), most);
            s.set(ValueLayout.JAVA_INT, BlockArena.OFF_BLOCK_COUNT, (int) BlockArena.MAX_BLOCK_COUNT + 1);
            assertTrue(refused(() -> BlockArena.attach(s)).contains("out of range"));
        });
    }

    /** The layout the C side shares: the bitmap never runs into the data, whatever the count. */
    @Test
    void theArenasMetadataNeverOverlaps() {
        for (long n : new long[] {1, 63, 64, 65, 6400, 100_000}) {
            long words = (n + 63) / 64;
            long bitmap = BlockArena.bitmapOffset(n);
            assertTrue(bitmap >= BlockArena.OFF_GENERATIONS + 4 * n, "generations before the bitmap, n=" + n);
            assertTrue(BlockArena.dataOffset(n) >= bitmap + 8 * words, "bitmap before the data, n=" + n);
            assertEquals(0, BlockArena.dataOffset(n) % 64);
        }
        assertEquals(0, Shared.alignUp(0, 64));
        assertEquals(64, Shared.alignUp(64, 64), "an aligned value stays");
        assertEquals(128, Shared.alignUp(65, 64));
    }

    /**
     * Bits past the last block are set in the shared bitmap at format (the ABI's rule); and a
     * peer that cleared them still gets no block past the count from this side.
     */
    @Test
    void noBlockPastTheCountEvenWhenAPeerClearedTheSpareBits() {
        long size = BlockArena.requiredSize(64, 70);
        withSegment(size, s -> {
            BlockArena arena = BlockArena.format(s, 64);
            assertEquals(70, arena.blockCount());
            long lastWord = BlockArena.bitmapOffset(70) + 8;
            assertEquals(-1L << 6, s.get(ValueLayout.JAVA_LONG, lastWord), "blocks 70..127 marked allocated for good");
            s.set(ValueLayout.JAVA_LONG, lastWord, 0L);   // a hostile peer clears them
            Set<Long> offsets = new HashSet<>();
            for (int i = 0; i < 70; i++) {
                Ref r = arena.allocate(64);
                assertTrue(r.offset() < arena.dataOffset() + 70L * 64, "block past the count: " + r);
                offsets.add(r.offset());
            }
            assertEquals(70, offsets.size());
            assertTrue(refused(() -> arena.allocate(64)).contains("arena full"));
        });
    }

    /** Allocation goes on from the word it last took a block from (next fit), so freed early blocks wait their turn. */
    @Test
    void allocationGoesOnWhereItLastTookABlock() {
        withSegment(BlockArena.requiredSize(64, 128), s -> {
            BlockArena arena = BlockArena.format(s, 64);
            Ref first = arena.allocate(64);
            for (int i = 1; i < 65; i++) {
                arena.allocate(64);
            }
            arena.free(first);
            Ref next = arena.allocate(64);
            assertEquals(arena.dataOffset() + 65L * 64, next.offset(), "block 65, in the word last used, not the freed block 0");
        });
    }

    @Test
    void aReferenceToABlockNeverAllocatedIsRefused() {
        withSegment(1 << 16, s -> {
            BlockArena arena = BlockArena.format(s, 64);
            Ref forged = new Ref(arena.dataOffset() + 3 * 64, 64, 0);
            String e = refused(() -> arena.free(forged));
            assertTrue(e.contains("block 3 is not allocated"), e);
        });
    }
}
