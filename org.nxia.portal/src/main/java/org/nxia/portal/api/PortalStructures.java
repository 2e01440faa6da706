package org.nxia.portal.api;

import java.lang.foreign.MemorySegment;

import org.osgi.annotation.versioning.ProviderType;

/**
 * Formats and attaches the Portal structures of {@code docs/portal-abi.md} over
 * any part of a region; a service of the Portal bundle. Attach validates the
 * header as untrusted.
 */
@ProviderType
public interface PortalStructures {

    /** Bytes an SPSC ring's header takes before its data area. */
    long spscHeaderSize();

    /** Bytes an SPSC ring with {@code capacity} data bytes needs. */
    long spscSize(int capacity);

    Ring formatSpsc(MemorySegment segment, int capacity);

    Ring attachSpsc(MemorySegment segment);

    /** Bytes an MPMC ring of {@code slots} slots of {@code slotSize} bytes needs. */
    long mpmcSize(int slots, int slotSize);

    Ring formatMpmc(MemorySegment segment, int slots, int slotSize);

    Ring attachMpmc(MemorySegment segment);

    PortalArena formatArena(MemorySegment segment, int blockSize);

    PortalArena attachArena(MemorySegment segment);
}
