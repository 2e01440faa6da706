package org.nxia.portal.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.junit.jupiter.api.Test;
import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.PortalException;
import org.nxia.portal.api.PortalStructures;
import org.nxia.portal.api.Ref;
import org.nxia.portal.api.Ring;

/** The {@link PortalStructures} service: sizes as the ABI gives them, and what it formats is what attaches. */
class StructuresTest {

    private final PortalStructures structures = new Structures();

    @Test
    void sizesAreTheAbis() {
        assertEquals(SpscRing.DATA_OFFSET, structures.spscHeaderSize());
        assertEquals(SpscRing.DATA_OFFSET + 4096, structures.spscSize(4096));
        assertEquals(MpmcRing.DATA_OFFSET + 16 * 128, structures.mpmcSize(16, 128));
        assertTrue(structures.spscHeaderSize() > 0);
    }

    @Test
    void aFormattedSpscRingCarriesAMessageToItsAttachedPeer() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(structures.spscSize(1024), 64);
            Ring producer = structures.formatSpsc(s, 1024);
            assertInstanceOf(SpscRing.class, producer);
            Ring consumer = structures.attachSpsc(s);
            assertEquals(1024, consumer.capacity());
            assertTrue(producer.offer(MemorySegment.ofArray(new byte[] {1, 2, 3})));
            MemorySegment into = arena.allocate(64);
            assertEquals(3, consumer.poll(into));
            assertEquals(3, into.get(ValueLayout.JAVA_BYTE, 2));
            assertTrue(consumer.isEmpty());
            assertThrows(PortalException.class, () -> structures.attachMpmc(s), "an SPSC header is not an MPMC ring");
        }
    }

    @Test
    void aFormattedMpmcRingAttaches() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(structures.mpmcSize(8, 64), 64);
            Ring ring = structures.formatMpmc(s, 8, 64);
            assertInstanceOf(MpmcRing.class, ring);
            Ring peer = structures.attachMpmc(s);
            MpmcRing m = (MpmcRing) peer;
            assertEquals(8, m.slots());
            assertEquals(64, m.slotSize());
            assertEquals(8L * m.maxMessage(), peer.capacity());
            assertTrue(ring.offer(MemorySegment.ofArray(new byte[] {9})));
            assertFalse(peer.isEmpty());
            assertThrows(PortalException.class, () -> structures.attachSpsc(s));
        }
    }

    @Test
    void aFormattedArenaAttachesAndSharesItsBlocks() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(64 * 1024, 4096);
            PortalArena a = structures.formatArena(s, 1024);
            PortalArena b = structures.attachArena(s);
            assertEquals(a.capacity(), b.capacity());
            assertEquals(((BlockArena) a).blockCount() * 1024L, a.capacity());
            assertEquals(1024, ((BlockArena) b).blockSize());
            Ref r = a.allocate(100);
            b.deref(r).set(ValueLayout.JAVA_BYTE, 99, (byte) 7);
            assertEquals(7, a.deref(r).get(ValueLayout.JAVA_BYTE, 99));
            b.free(r);
            assertThrows(PortalException.class, () -> a.deref(r), "freed through the other view: stale");
        }
    }
}
