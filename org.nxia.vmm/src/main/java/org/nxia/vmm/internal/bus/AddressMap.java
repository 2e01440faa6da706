package org.nxia.vmm.internal.bus;

import java.util.Arrays;

/**
 * Non-overlapping [start, end) ranges mapped to handlers, looked up by binary
 * search over primitive arrays: a lookup allocates nothing. Registration
 * replaces the arrays (copy on write), so lookups need no lock.
 */
final class AddressMap<H> {

    private record Table(long[] starts, long[] ends, Object[] handlers) {
    }

    private volatile Table table = new Table(new long[0], new long[0], new Object[0]);

    synchronized void add(long start, long length, H handler, String what) {
        if (length <= 0 || start < 0 || start > Long.MAX_VALUE - length) {
            throw new IllegalArgumentException(what + ": bad range 0x" + Long.toHexString(start) + " +" + length);
        }
        long end = start + length;
        Table t = table;
        int i = insertionPoint(t.starts, start);
        if ((i > 0 && t.ends[i - 1] > start) || (i < t.starts.length && t.starts[i] < end)) {
            throw new IllegalArgumentException("%s: range [0x%x, 0x%x) overlaps one already registered".formatted(what, start, end));
        }
        int n = t.starts.length;
        long[] s = new long[n + 1];
        long[] e = new long[n + 1];
        Object[] h = new Object[n + 1];
        System.arraycopy(t.starts, 0, s, 0, i);
        System.arraycopy(t.ends, 0, e, 0, i);
        System.arraycopy(t.handlers, 0, h, 0, i);
        s[i] = start;
        e[i] = end;
        h[i] = handler;
        System.arraycopy(t.starts, i, s, i + 1, n - i);
        System.arraycopy(t.ends, i, e, i + 1, n - i);
        System.arraycopy(t.handlers, i, h, i + 1, n - i);
        table = new Table(s, e, h);
    }

    /** The handler whose range holds {@code address}, or null. */
    @SuppressWarnings("unchecked")
    H find(long address) {
        Table t = table;
        long[] starts = t.starts;
        int lo = 0;
        int hi = starts.length - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (starts[mid] <= address) {
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        // hi is the last range starting at or below address
        return hi >= 0 && address < t.ends[hi] ? (H) t.handlers[hi] : null;
    }

    int size() {
        return table.starts.length;
    }

    private static int insertionPoint(long[] starts, long start) {
        int i = Arrays.binarySearch(starts, start);
        return i >= 0 ? i : -i - 1;
    }
}
