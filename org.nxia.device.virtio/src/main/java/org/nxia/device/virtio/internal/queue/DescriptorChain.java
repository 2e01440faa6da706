package org.nxia.device.virtio.internal.queue;

/**
 * One descriptor chain popped from a {@link SplitQueue}, flattened: indirect
 * tables are already followed, so entry {@code i} is just a guest buffer.
 *
 * <p>A reusable cursor owned by its queue: {@link SplitQueue#next()} refills it
 * in place, so the hot path allocates nothing. It is valid until the next call
 * to {@code next()}; copy out {@link #head()} before that if the request stays
 * in flight. Every range in it has been checked against guest memory, readable
 * entries come before writable ones, and there are at most queue-size entries.
 */
public final class DescriptorChain {
    private final long[] addresses;
    private final int[] lengths;
    private int head;
    private int count;
    private int readableCount;
    private long readableBytes;
    private long writableBytes;

    DescriptorChain(int capacity) {
        addresses = new long[capacity];
        lengths = new int[capacity];
    }

    /** The head descriptor index: what {@link SplitQueue#pushUsed} takes back. */
    public int head() {
        return head;
    }

    /** Buffers in the chain, readable and writable. */
    public int count() {
        return count;
    }

    /** Device-readable buffers; they are entries {@code 0 .. readableCount() - 1}. */
    public int readableCount() {
        return readableCount;
    }

    /** Device-writable buffers; they are entries {@code readableCount() .. count() - 1}. */
    public int writableCount() {
        return count - readableCount;
    }

    /** Guest-physical address of buffer {@code i}. */
    public long address(int i) {
        return addresses[checkIndex(i)];
    }

    /** Length in bytes of buffer {@code i} (a u32). */
    public long length(int i) {
        return Integer.toUnsignedLong(lengths[checkIndex(i)]);
    }

    /** Whether buffer {@code i} is device-writable. */
    public boolean isWritable(int i) {
        return checkIndex(i) >= readableCount;
    }

    /** Total bytes the device may read. */
    public long readableBytes() {
        return readableBytes;
    }

    /** Total bytes the device may write. */
    public long writableBytes() {
        return writableBytes;
    }

    void reset(int headIndex) {
        head = headIndex;
        count = 0;
        readableCount = 0;
        readableBytes = 0;
        writableBytes = 0;
    }

    int capacity() {
        return addresses.length;
    }

    /** Appends a buffer; the caller has checked the range, the order and the capacity. */
    void add(long address, int length, boolean writable) {
        addresses[count] = address;
        lengths[count] = length;
        count++;
        // At most 32768 entries of at most 2^32 - 1 bytes each: the sums stay below 2^47.
        if (writable) {
            writableBytes += Integer.toUnsignedLong(length);
        } else {
            readableCount++;
            readableBytes += Integer.toUnsignedLong(length);
        }
    }

    private int checkIndex(int i) {
        if (i < 0 || i >= count) {
            throw new IndexOutOfBoundsException("buffer " + i + " of a chain of " + count);
        }
        return i;
    }
}
