package org.nxia.vmm.spi;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * {@link GuestMemory} over one host segment. The checks happen here, once,
 * before {@code asSlice}; nothing outside the segment is reachable.
 */
record SegmentGuestMemory(long base, MemorySegment segment) implements GuestMemory {

    SegmentGuestMemory {
        Objects.requireNonNull(segment, "segment");
        if (base < 0 || base > Long.MAX_VALUE - segment.byteSize()) {
            throw new IllegalArgumentException("guest memory [0x%x, +0x%x) must lie within the non-negative address space"
                    .formatted(base, segment.byteSize()));
        }
    }

    @Override
    public long size() {
        return segment.byteSize();
    }

    @Override
    public MemorySegment slice(long address, long length) {
        check(address, length);
        return segment.asSlice(address - base, length);
    }
}
