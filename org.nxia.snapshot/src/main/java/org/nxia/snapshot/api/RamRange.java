package org.nxia.snapshot.api;

/**
 * A page-aligned range of guest RAM, as offsets from RAM's start.
 *
 * @param offset the first byte, a multiple of {@link SnapshotWriter#PAGE_SIZE}
 * @param length its length, a positive multiple of {@link SnapshotWriter#PAGE_SIZE}
 */
public record RamRange(long offset, long length) {

    public RamRange {
        if (offset < 0 || length <= 0 || offset % SnapshotWriter.PAGE_SIZE != 0 || length % SnapshotWriter.PAGE_SIZE != 0
            || offset > Long.MAX_VALUE - length) {
            throw new IllegalArgumentException("not a page-aligned range: offset " + offset + ", length " + length);
        }
    }

    /** One past the last byte. */
    public long end() {
        return offset + length;
    }
}
