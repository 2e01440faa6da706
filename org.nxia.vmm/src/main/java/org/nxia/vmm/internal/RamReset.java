package org.nxia.vmm.internal;

import java.lang.foreign.MemorySegment;
import java.util.List;

import org.nxia.vmm.spi.DirtyLog;
import org.nxia.vmm.api.VmSnapshot;

/**
 * Puts pages of guest RAM back to a snapshot's bytes: those in one of its
 * chunks are copied from there, the rest (zero when saved) are zeroed. The
 * chunks were checked by {@link VmSnapshot} (ascending, page-aligned, inside
 * RAM); a bit past the end of RAM is refused, not followed. Allocates nothing
 * per call.
 */
final class RamReset {

    private static final int PAGE = (int) DirtyLog.PAGE;
    private static final MemorySegment ZERO_PAGE = MemorySegment.ofArray(new byte[PAGE]);

    private final long[] starts;
    private final long[] ends;
    private final MemorySegment[] bytes;
    private final long pages;

    RamReset(List<VmSnapshot.RamChunk> chunks, long ramBytes) {
        int n = chunks.size();
        starts = new long[n];
        ends = new long[n];
        bytes = new MemorySegment[n];
        for (int i = 0; i < n; i++) {
            starts[i] = chunks.get(i).gpa();
            ends[i] = chunks.get(i).end();
            bytes[i] = chunks.get(i).bytes();
        }
        pages = ramBytes / PAGE;
    }

    /**
     * Rewrites each page whose bit is set in {@code bitmap} (bit {@code p % 64}
     * of word {@code p / 64} for the page at {@code p * 4096}) in {@code ram},
     * the host view of guest RAM from guest-physical 0, and clears the bits.
     *
     * @return pages rewritten
     * @throws IllegalArgumentException if a bit names a page past the end of RAM
     */
    long reset(long[] bitmap, MemorySegment ram) {
        long rewritten = 0;
        for (int w = 0; w < bitmap.length; w++) {
            long bits = bitmap[w];
            bitmap[w] = 0;
            while (bits != 0) {
                long page = ((long) w << 6) + Long.numberOfTrailingZeros(bits);
                bits &= bits - 1;
                if (page >= pages) {
                    throw new IllegalArgumentException("page " + page + " is past the end of RAM (" + pages + " pages)");
                }
                rewrite(page * PAGE, ram);
                rewritten++;
            }
        }
        return rewritten;
    }

    private void rewrite(long gpa, MemorySegment ram) {
        int c = chunkOf(gpa);
        if (c >= 0) {
            MemorySegment.copy(bytes[c], gpa - starts[c], ram, gpa, PAGE);
        } else {
            MemorySegment.copy(ZERO_PAGE, 0, ram, gpa, PAGE);
        }
    }

    /** The chunk holding {@code gpa}, or -1: a binary search over the ascending chunks. */
    private int chunkOf(long gpa) {
        int lo = 0;
        int hi = starts.length - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (gpa < starts[mid]) {
                hi = mid - 1;
            } else if (gpa >= ends[mid]) {
                lo = mid + 1;
            } else {
                return mid;
            }
        }
        return -1;
    }
}
