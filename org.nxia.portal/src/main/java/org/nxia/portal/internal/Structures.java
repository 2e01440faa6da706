package org.nxia.portal.internal;

import java.lang.foreign.MemorySegment;

import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.PortalStructures;
import org.nxia.portal.api.Ring;
import org.osgi.service.component.annotations.Component;

/** The one implementation of the Portal ABI's structures, offered as a service. */
@Component(service = PortalStructures.class)
public final class Structures implements PortalStructures {

    @Override
    public long spscHeaderSize() {
        return SpscRing.DATA_OFFSET;
    }

    @Override
    public long spscSize(int capacity) {
        return SpscRing.requiredSize(capacity);
    }

    @Override
    public Ring formatSpsc(MemorySegment segment, int capacity) {
        return SpscRing.format(segment, capacity);
    }

    @Override
    public Ring attachSpsc(MemorySegment segment) {
        return SpscRing.attach(segment);
    }

    @Override
    public long mpmcSize(int slots, int slotSize) {
        return MpmcRing.requiredSize(slots, slotSize);
    }

    @Override
    public Ring formatMpmc(MemorySegment segment, int slots, int slotSize) {
        return MpmcRing.format(segment, slots, slotSize);
    }

    @Override
    public Ring attachMpmc(MemorySegment segment) {
        return MpmcRing.attach(segment);
    }

    @Override
    public PortalArena formatArena(MemorySegment segment, int blockSize) {
        return BlockArena.format(segment, blockSize);
    }

    @Override
    public PortalArena attachArena(MemorySegment segment) {
        return BlockArena.attach(segment);
    }
}
