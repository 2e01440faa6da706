package org.nxia.snapshot.internal;

import java.lang.foreign.MemorySegment;

/**
 * The runs of non-zero pages the writer stores, built while it scans guest RAM. What is
 * non-zero is the guest's choice, so the list is bounded whatever the guest wrote: when it
 * reaches twice the page map's run limit it is joined across the smallest gaps (storing some
 * zero pages), and later pages within the gap reached are joined as they come. At the end it
 * is joined down to the limit.
 */
public final class RunBuilder {

    private static final MemorySegment ZERO_PAGE = MemorySegment.ofArray(new byte[Format.PAGE]);

    private final int maxRuns;
    /** (start, end) byte offsets, ascending. */
    private final LongList runs = new LongList();
    /** A page this close to the last run's end joins it. */
    private long joinGap;
    private int peakRuns;

    public RunBuilder(int maxRuns) {
        this.maxRuns = maxRuns;
    }

    /** Adds the non-zero pages of {@code ram} in [start, end), which lies after every earlier range. */
    public void scan(MemorySegment ram, long start, long end) {
        scan(ram, start, end, 0);
    }

    /** As {@link #scan(MemorySegment, long, long)} for {@code ram} that starts at {@code base} in guest RAM. */
    public void scan(MemorySegment ram, long start, long end, long base) {
        for (long page = start; page < end; page += Format.PAGE) {
            if (MemorySegment.mismatch(ram, page, page + Format.PAGE, ZERO_PAGE, 0, Format.PAGE) >= 0) {
                add(base + page);
            }
        }
    }

    /** Adds one page at {@code page} (a byte offset after every page added before). */
    public void add(long page) {
        int last = runs.size() - 1;
        if (last > 0 && page - runs.get(last) <= joinGap) {
            runs.set(last, page + Format.PAGE);
            return;
        }
        runs.add(page);
        runs.add(page + Format.PAGE);
        peakRuns = Math.max(peakRuns, runs.size() / 2);
        if (runs.size() / 2 >= 2 * maxRuns) {
            joinGap = join(maxRuns, joinGap);
        }
    }

    /** The runs, at most the limit; (start, end) pairs. */
    public LongList finish() {
        join(maxRuns, joinGap);
        return runs;
    }

    /** The most runs held at once (for the bound's test). */
    public int peakRuns() {
        return peakRuns;
    }

    /** Joins runs across ever larger gaps, from past {@code gap}, until at most {@code limit} remain; returns the gap used. */
    private long join(int limit, long gap) {
        while (runs.size() / 2 > limit) {
            gap = gap == 0 ? Format.PAGE : gap * 2;
            int kept = 0;
            for (int i = 0; i < runs.size(); i += 2) {
                if (kept > 0 && runs.get(i) - runs.get(kept - 1) <= gap) {
                    runs.set(kept - 1, runs.get(i + 1));
                } else {
                    runs.set(kept++, runs.get(i));
                    runs.set(kept++, runs.get(i + 1));
                }
            }
            runs.truncate(kept);
        }
        return gap;
    }
}
