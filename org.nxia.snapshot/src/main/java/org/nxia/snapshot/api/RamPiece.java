package org.nxia.snapshot.api;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * Guest RAM from {@code offset}, where it is held now (a VM's saved chunk), for
 * {@link SnapshotWriter#ram(long, java.util.List, SaveProgress)}.
 *
 * @param offset its offset in guest RAM, a multiple of {@link SnapshotWriter#PAGE_SIZE}
 * @param bytes  its bytes, a positive multiple of {@link SnapshotWriter#PAGE_SIZE} long
 */
public record RamPiece(long offset, MemorySegment bytes) {

    public RamPiece {
        Objects.requireNonNull(bytes, "bytes");
        new RamRange(offset, bytes.byteSize());   // checks alignment
    }
}
