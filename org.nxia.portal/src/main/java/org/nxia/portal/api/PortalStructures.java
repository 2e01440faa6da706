package org.nxia.portal.api;

import java.lang.foreign.MemorySegment;

import org.nxia.portal.internal.BlockArena;
import org.nxia.portal.internal.MpmcRing;
import org.nxia.portal.internal.SpscRing;

/**
 * Formats and attaches the Portal structures of {@code docs/portal-abi.md} over
 * any part of a region. Attach validates the header as untrusted.
 */
public final class PortalStructures {

    private PortalStructures() {
    }

    /** Bytes an SPSC ring with {@code capacity} data bytes needs. */
    public static long spscSize(int capacity) {
        return SpscRing.requiredSize(capacity);
    }

    public static Ring formatSpsc(MemorySegment segment, int capacity) {
        return SpscRing.format(segment, capacity);
    }

    public static Ring attachSpsc(MemorySegment segment) {
        return SpscRing.attach(segment);
    }

    /** Bytes an MPMC ring of {@code slots} slots of {@code slotSize} bytes needs. */
    public static long mpmcSize(int slots, int slotSize) {
        return MpmcRing.requiredSize(slots, slotSize);
    }

    public static Ring formatMpmc(MemorySegment segment, int slots, int slotSize) {
        return MpmcRing.format(segment, slots, slotSize);
    }

    public static Ring attachMpmc(MemorySegment segment) {
        return MpmcRing.attach(segment);
    }

    public static PortalArena formatArena(MemorySegment segment, int blockSize) {
        return BlockArena.format(segment, blockSize);
    }

    public static PortalArena attachArena(MemorySegment segment) {
        return BlockArena.attach(segment);
    }
}
