package org.nxia.vmm.spi;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Guest memory: the one type through which the VMM reads and writes guest
 * RAM. Every access is checked against the range; a bad address or length
 * throws {@link GuestMemoryException} and touches nothing.
 *
 * <p>Addresses are guest-physical. Multi-byte values are little-endian.
 */
public interface GuestMemory {

    /** Wraps {@code segment} as guest memory starting at guest-physical {@code base}. */
    static GuestMemory of(long base, MemorySegment segment) {
        return new SegmentGuestMemory(base, segment);
    }

    /** The first guest-physical address. */
    long base();

    /** Bytes of guest memory. */
    long size();

    /**
     * The host view of {@code [address, address + length)}, bounds-checked.
     * The view stays valid while the VM lives; do not keep it beyond that.
     */
    MemorySegment slice(long address, long length);

    /** Whether {@code [address, address + length)} lies wholly inside guest memory. */
    default boolean contains(long address, long length) {
        long offset = address - base();
        return length >= 0 && offset >= 0 && offset <= size() && length <= size() - offset;
    }

    /** Throws {@link GuestMemoryException} unless {@link #contains} holds. */
    default void check(long address, long length) {
        if (!contains(address, length)) {
            throw new GuestMemoryException(address, length, base(), size());
        }
    }

    default byte readByte(long address) {
        return slice(address, 1).get(ValueLayout.JAVA_BYTE, 0);
    }

    default short readShort(long address) {
        return slice(address, 2).get(ValueLayout.JAVA_SHORT_UNALIGNED, 0);
    }

    default int readInt(long address) {
        return slice(address, 4).get(ValueLayout.JAVA_INT_UNALIGNED, 0);
    }

    default long readLong(long address) {
        return slice(address, 8).get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
    }

    default void writeByte(long address, byte value) {
        slice(address, 1).set(ValueLayout.JAVA_BYTE, 0, value);
    }

    default void writeShort(long address, short value) {
        slice(address, 2).set(ValueLayout.JAVA_SHORT_UNALIGNED, 0, value);
    }

    default void writeInt(long address, int value) {
        slice(address, 4).set(ValueLayout.JAVA_INT_UNALIGNED, 0, value);
    }

    default void writeLong(long address, long value) {
        slice(address, 8).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, value);
    }

    /** Copies guest bytes into a new array. */
    default byte[] read(long address, int length) {
        return slice(address, length).toArray(ValueLayout.JAVA_BYTE);
    }

    /** Copies {@code bytes} into guest memory at {@code address}. */
    default void write(long address, byte[] bytes) {
        MemorySegment.copy(bytes, 0, slice(address, bytes.length), ValueLayout.JAVA_BYTE, 0, bytes.length);
    }
}
