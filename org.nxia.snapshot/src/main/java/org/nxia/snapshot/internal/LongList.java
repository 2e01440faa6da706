package org.nxia.snapshot.internal;

import java.util.Arrays;

/** A growable list of longs, used in pairs (start, end) by the writer's page scan. */
public final class LongList {

    private long[] values = new long[16];
    private int size;

    public void add(long value) {
        if (size == values.length) {
            values = Arrays.copyOf(values, size * 2);
        }
        values[size++] = value;
    }

    public long get(int index) {
        return values[index];
    }

    public void set(int index, long value) {
        values[index] = value;
    }

    public int size() {
        return size;
    }

    public void truncate(int newSize) {
        size = newSize;
    }
}
