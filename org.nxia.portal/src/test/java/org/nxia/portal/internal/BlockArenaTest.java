package org.nxia.portal.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nxia.portal.api.PortalException;
import org.nxia.portal.api.Ref;

class BlockArenaTest {
    private final Arena arena = Arena.ofShared();

    @AfterEach
    void close() {
        arena.close();
    }

    private MemorySegment region(long size) {
        return arena.allocate(size, 4096);
    }

    @Test
    void allocatesDerefsAndFreesABlock() {
        BlockArena a = BlockArena.format(region(64 * 1024), 256);
        Ref ref = a.allocate(100);
        assertEquals(100, ref.length());
        MemorySegment slice = a.deref(ref);
        assertEquals(100, slice.byteSize());
        slice.fill((byte) 7);
        assertEquals(7, a.deref(ref).get(ValueLayout.JAVA_BYTE, 99));
        a.free(ref);
        Ref again = a.allocate(256);
        assertEquals(256, a.deref(again).byteSize());
    }

    @Test
    void formatUsesTheWholeSegmentAndAttachSeesTheSameGeometry() {
        MemorySegment seg = region(1 << 20);
        BlockArena a = BlockArena.format(seg, 4096);
        assertTrue(BlockArena.requiredSize(4096, a.blockCount()) <= seg.byteSize());
        assertTrue(BlockArena.requiredSize(4096, a.blockCount() + 1L) > seg.byteSize());
        BlockArena b = BlockArena.attach(seg);
        assertEquals(a.blockCount(), b.blockCount());
        assertEquals(a.capacity(), b.capacity());
        Ref ref = a.allocate(10);
        b.deref(ref).set(ValueLayout.JAVA_BYTE, 0, (byte) 42);
        assertEquals(42, a.deref(ref).get(ValueLayout.JAVA_BYTE, 0));
        b.free(ref);
        assertThrows(PortalException.class, () -> a.deref(ref));
    }

    @Test
    void worksOnAHeapSegmentBackedByLongs() {
        long[] longs = new long[4096];
        MemorySegment seg = MemorySegment.ofArray(longs);
        BlockArena a = BlockArena.format(seg, 64);
        assertTrue(a.blockCount() > 0 && BlockArena.requiredSize(64, a.blockCount()) <= seg.byteSize());
        Ref ref = a.allocate(64);
        a.deref(ref).fill((byte) 1);
        // The bytes land in the array itself, at the block's offset: the arena addresses the heap segment, not a copy.
        assertEquals(0x0101_0101_0101_0101L, longs[(int) (ref.offset() / Long.BYTES)]);
        assertEquals(0x0101_0101_0101_0101L, longs[(int) ((ref.offset() + 56) / Long.BYTES)]);
        assertEquals(a.blockCount(), BlockArena.attach(seg).blockCount());
        a.free(ref);
        assertThrows(PortalException.class, () -> a.deref(ref));
        Ref again = a.allocate(64);
        assertEquals(ref.offset(), again.offset());
        assertEquals(ref.generation() + 1, again.generation());
    }

    @Test
    void staleRefAfterFreeIsRefused() {
        BlockArena a = BlockArena.format(region(8192), 64);
        Ref ref = a.allocate(64);
        a.free(ref);
        assertThrows(PortalException.class, () -> a.deref(ref));
        // The block is handed out again with a new generation; the old ref stays dead.
        Ref next = null;
        for (int i = 0; i < a.blockCount(); i++) {
            Ref r = a.allocate(64);
            if (r.offset() == ref.offset()) {
                next = r;
            }
        }
        assertNotNull(next, "the freed block was never handed out again");
        assertEquals(ref.generation() + 1, next.generation());
        PortalException e = assertThrows(PortalException.class, () -> a.deref(ref));
        assertTrue(e.getMessage().contains("generation"), e.getMessage());
    }

    @Test
    void forgedGenerationIsRefused() {
        BlockArena a = BlockArena.format(region(8192), 64);
        Ref ref = a.allocate(64);
        Ref forged = new Ref(ref.offset(), ref.length(), ref.generation() + 5);
        assertThrows(PortalException.class, () -> a.deref(forged));
        assertThrows(PortalException.class, () -> a.free(forged));
        a.deref(ref); // the real one still works
    }

    @Test
    void outOfBoundsMisalignedNegativeAndOverflowingRefsAreRefused() {
        BlockArena a = BlockArena.format(region(8192), 64);
        Ref ref = a.allocate(64);
        long end = a.dataOffset() + a.capacity();
        List<Ref> bad = List.of(
                new Ref(end, 64, 0),
                new Ref(Long.MAX_VALUE, 64, 0),
                new Ref(-64, 64, 0),
                new Ref(0, 64, 0), // the header
                new Ref(ref.offset() + 8, 8, ref.generation()),
                new Ref(ref.offset(), 65, ref.generation()),
                new Ref(ref.offset(), Long.MAX_VALUE, ref.generation()),
                new Ref(ref.offset(), -1, ref.generation()),
                new Ref(ref.offset(), 0, ref.generation()));
        for (Ref r : bad) {
            assertThrows(PortalException.class, () -> a.deref(r), r.toString());
            assertThrows(PortalException.class, () -> a.free(r), r.toString());
        }
        assertThrows(PortalException.class, () -> a.deref(null));
    }

    @Test
    void invalidAllocationLengthsAreRefused() {
        BlockArena a = BlockArena.format(region(8192), 64);
        assertThrows(PortalException.class, () -> a.allocate(0));
        assertThrows(PortalException.class, () -> a.allocate(-1));
        PortalException e = assertThrows(PortalException.class, () -> a.allocate(65));
        assertTrue(e.getMessage().contains("block size"), e.getMessage());
    }

    @Test
    void doubleFreeIsRefused() {
        BlockArena a = BlockArena.format(region(8192), 64);
        Ref ref = a.allocate(64);
        a.free(ref);
        assertThrows(PortalException.class, () -> a.free(ref));
    }

    @Test
    void fullArenaRefusesAndRecoversAfterAFree() {
        BlockArena a = BlockArena.format(region(64 * 200), 64);
        int n = a.blockCount();
        List<Ref> refs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            refs.add(a.allocate(1));
        }
        assertEquals(n, refs.stream().mapToLong(Ref::offset).distinct().count());
        PortalException e = assertThrows(PortalException.class, () -> a.allocate(1));
        assertTrue(e.getMessage().contains("full"), e.getMessage());
        a.free(refs.get(n / 2));
        assertEquals(refs.get(n / 2).offset(), a.allocate(1).offset());
    }

    @Test
    void attachRefusesACorruptHeader() {
        MemorySegment seg = region(16384);
        BlockArena a = BlockArena.format(seg, 128);
        int count = a.blockCount();
        assertThrows(PortalException.class, () -> BlockArena.attach(region(8192))); // zero: no magic
        corruptAndExpectRefusal(seg, BlockArena.OFF_MAGIC, 0x12345678);
        corruptAndExpectRefusal(seg, BlockArena.OFF_VERSION, 2);
        corruptAndExpectRefusal(seg, BlockArena.OFF_BLOCK_SIZE, 100); // not a power of two
        corruptAndExpectRefusal(seg, BlockArena.OFF_BLOCK_SIZE, 32); // too small
        corruptAndExpectRefusal(seg, BlockArena.OFF_BLOCK_SIZE, 1 << 31); // negative as int
        corruptAndExpectRefusal(seg, BlockArena.OFF_BLOCK_SIZE, 256); // no longer fits
        corruptAndExpectRefusal(seg, BlockArena.OFF_BLOCK_COUNT, 0);
        corruptAndExpectRefusal(seg, BlockArena.OFF_BLOCK_COUNT, count + 1);
        corruptAndExpectRefusal(seg, BlockArena.OFF_BLOCK_COUNT, -1); // 2^32-1 unsigned
        assertEquals(count, BlockArena.attach(seg).blockCount());
        assertThrows(PortalException.class, () -> BlockArena.attach(seg.asSlice(0, 32)));
        assertThrows(PortalException.class, () -> BlockArena.attach(seg.asSlice(0, seg.byteSize() - 64)));
    }

    private static void corruptAndExpectRefusal(MemorySegment seg, long offset, int value) {
        int saved = seg.get(ValueLayout.JAVA_INT, offset);
        seg.set(ValueLayout.JAVA_INT, offset, value);
        try {
            PortalException e = assertThrows(PortalException.class, () -> BlockArena.attach(seg));
            assertTrue(e.getMessage().startsWith("BlockArena.attach"), e.getMessage());
        } finally {
            seg.set(ValueLayout.JAVA_INT, offset, saved);
        }
    }

    @Test
    void formatRefusesBadBlockSizesAndTinySegments() {
        assertThrows(PortalException.class, () -> BlockArena.format(region(8192), 96));
        assertThrows(PortalException.class, () -> BlockArena.format(region(8192), 32));
        assertThrows(PortalException.class, () -> BlockArena.format(region(128), 64));
        assertThrows(PortalException.class, () -> BlockArena.format(MemorySegment.ofArray(new byte[8192]), 64));
    }

    @Test
    void concurrentAllocateAndFreeNeverHandsOutABlockTwice() throws Exception {
        BlockArena a = BlockArena.format(region(64 * 150), 64); // ~130 blocks: contention and full arenas
        int threads = 4;
        int rounds = 100_000;
        AtomicIntegerArray owner = new AtomicIntegerArray(a.blockCount());
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch start = new CountDownLatch(1);
        List<Thread> workers = new ArrayList<>();
        for (int t = 1; t <= threads; t++) {
            int id = t;
            workers.add(Thread.ofPlatform().start(() -> {
                try {
                    start.await();
                    List<Ref> held = new ArrayList<>();
                    for (int i = 0; i < rounds && failure.get() == null; i++) {
                        if (held.size() < 40 && (i & 3) != 3) {
                            Ref r;
                            try {
                                r = a.allocate(64);
                            } catch (PortalException full) {
                                continue;
                            }
                            int index = (int) ((r.offset() - a.dataOffset()) / 64);
                            if (!owner.compareAndSet(index, 0, id)) {
                                throw new AssertionError("block " + index + " handed to " + id
                                        + " while owned by " + owner.get(index));
                            }
                            a.deref(r).fill((byte) id);
                            held.add(r);
                        } else if (!held.isEmpty()) {
                            Ref r = held.remove(held.size() - 1);
                            MemorySegment s = a.deref(r);
                            for (long b = 0; b < 64; b += 8) {
                                if (s.get(ValueLayout.JAVA_BYTE, b) != (byte) id) {
                                    throw new AssertionError("block content changed under its owner");
                                }
                            }
                            int index = (int) ((r.offset() - a.dataOffset()) / 64);
                            if (!owner.compareAndSet(index, id, 0)) {
                                throw new AssertionError("ownership of block " + index + " lost");
                            }
                            a.free(r);
                        }
                    }
                    for (Ref r : held) {
                        owner.set((int) ((r.offset() - a.dataOffset()) / 64), 0);
                        a.free(r);
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }));
        }
        start.countDown();
        for (Thread w : workers) {
            w.join();
        }
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
        // Everything was returned: the whole arena can be allocated again.
        for (int i = 0; i < a.blockCount(); i++) {
            a.allocate(64);
        }
        assertThrows(PortalException.class, () -> a.allocate(64));
    }
}
