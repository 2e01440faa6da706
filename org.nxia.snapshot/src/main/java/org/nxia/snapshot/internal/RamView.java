package org.nxia.snapshot.internal;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Guest RAM as the writer reads it: pieces at their offsets, zero between them, so that RAM
 * saved in pieces (a VM's touched chunks) is stored without first being laid out whole. A run
 * may span pieces and the holes between them (the run list joins across small gaps).
 */
public final class RamView {

    /** What a hole reads as; a slice of it is at most this long. */
    private static final MemorySegment ZEROS = MemorySegment.ofArray(new byte[1 << 20]);

    private final long size;
    private final long[] offsets;
    private final MemorySegment[] pieces;

    /**
     * @param offsets each piece's offset: ascending, page-aligned, the pieces not overlapping and inside {@code size}
     */
    public RamView(long size, long[] offsets, MemorySegment[] pieces) {
        if (offsets.length != pieces.length) {
            throw new IllegalArgumentException(offsets.length + " offsets for " + pieces.length + " pieces");
        }
        long end = 0;
        for (int i = 0; i < offsets.length; i++) {
            long length = pieces[i].byteSize();
            if (offsets[i] < end || offsets[i] % Format.PAGE != 0 || length == 0 || length % Format.PAGE != 0
                    || offsets[i] > size - length) {
                throw new IllegalArgumentException("RAM piece %d at %d of %d bytes: not page-aligned, after the one before and inside %d bytes"
                        .formatted(i, offsets[i], length, size));
            }
            end = offsets[i] + length;
        }
        this.size = size;
        this.offsets = offsets.clone();
        this.pieces = pieces.clone();
    }

    /** RAM that is one segment. */
    public static RamView whole(MemorySegment ram) {
        return new RamView(ram.byteSize(), new long[] {0}, new MemorySegment[] {ram});
    }

    public long size() {
        return size;
    }

    /** Feeds the non-zero pages of every piece to {@code runs}, in ascending order. */
    public void scan(RunBuilder runs) {
        for (int i = 0; i < pieces.length; i++) {
            runs.scan(pieces[i], 0, pieces[i].byteSize(), offsets[i]);
        }
    }

    /**
     * The bytes from {@code at}, at most {@code max} of them and at least one: a piece's own
     * memory, or zeros up to the next piece.
     */
    public MemorySegment slice(long at, long max) {
        if (at < 0 || at >= size || max <= 0) {
            throw new IndexOutOfBoundsException("offset " + at + " (at most " + max + " bytes) in RAM of " + size);
        }
        int i = Arrays.binarySearch(offsets, at);
        if (i < 0) {
            i = -i - 2;   // the last piece starting before at, or -1
        }
        if (i >= 0 && at < offsets[i] + pieces[i].byteSize()) {
            long from = at - offsets[i];
            return pieces[i].asSlice(from, Math.min(max, pieces[i].byteSize() - from));
        }
        long holeEnd = i + 1 < offsets.length ? offsets[i + 1] : size;
        return ZEROS.asSlice(0, Math.min(Math.min(max, holeEnd - at), ZEROS.byteSize()));
    }

    /** Whether {@code thread} may read every piece. */
    public boolean readableBy(Thread thread) {
        for (MemorySegment p : pieces) {
            if (!p.isAccessibleBy(thread)) {
                return false;
            }
        }
        return true;
    }
}
