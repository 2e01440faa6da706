package org.nxia.vmm.spi;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class GuestMemoryTest {

    private static final long SIZE = 0x1000;

    private final byte[] backing = new byte[(int) SIZE];
    private final GuestMemory zeroBased = GuestMemory.of(0, MemorySegment.ofArray(backing));
    private final GuestMemory high = GuestMemory.of(0x10_0000, MemorySegment.ofArray(new byte[(int) SIZE]));

    @Test
    void reportsBaseAndSize() {
        assertEquals(0, zeroBased.base());
        assertEquals(SIZE, zeroBased.size());
        assertEquals(0x10_0000, high.base());
        assertEquals(SIZE, high.size());
    }

    @Test
    void rejectsNegativeBaseAndNullSegment() {
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.of(-1, MemorySegment.ofArray(new byte[1])));
        assertThrows(NullPointerException.class, () -> GuestMemory.of(0, null));
    }

    @ParameterizedTest
    @CsvSource({
            "0, 0",
            "0, 4096",
            "4095, 1",
            "4096, 0",
            "100, 3996",
            "2048, 2048",
    })
    void containsRangesWhollyInside(long address, long length) {
        assertTrue(zeroBased.contains(address, length));
        assertTrue(high.contains(0x10_0000 + address, length));
        zeroBased.check(address, length);
    }

    @ParameterizedTest
    @CsvSource({
            "0, 4097",
            "4095, 2",
            "4096, 1",
            "4097, 0",
            "-1, 1",
            "-1, 0",
            "0, -1",
            "100, -1",
            "4096, -4096",
            "1, 9223372036854775807",
            "4095, 9223372036854775807",
            "9223372036854775807, 1",
            "9223372036854775807, 0",
            "9223372036854775807, 9223372036854775807",
            "-9223372036854775808, 1",
            "-9223372036854775808, -9223372036854775808",
            "0, -9223372036854775808",
    })
    void doesNotContainRangesOutsideIncludingOverflow(long address, long length) {
        assertFalse(zeroBased.contains(address, length));
        GuestMemoryException e = assertThrows(GuestMemoryException.class, () -> zeroBased.check(address, length));
        assertEquals(address, e.address());
        assertEquals(length, e.length());
        assertThrows(GuestMemoryException.class, () -> zeroBased.slice(address, length));
    }

    @ParameterizedTest
    @CsvSource({
            "0, 1",
            "1048575, 1",
            "1048575, 2",
            "1052672, 1",
            "1052671, 2",
            "-9223372036854775808, 1",
            "9223372036854775807, 1",
            "1048576, 4097",
            "1048576, -1",
    })
    void nonZeroBaseRejectsRangesOutsideItsWindow(long address, long length) {
        assertFalse(high.contains(address, length));
        assertThrows(GuestMemoryException.class, () -> high.slice(address, length));
    }

    @Test
    void nonZeroBaseTranslatesGuestAddressToSegmentOffset() {
        byte[] bytes = new byte[(int) SIZE];
        GuestMemory m = GuestMemory.of(0x10_0000, MemorySegment.ofArray(bytes));
        m.writeInt(0x10_0010, 0x11223344);
        assertEquals(0x44, bytes[0x10]);
        assertEquals(0x11, bytes[0x13]);
        assertEquals(0x11223344, m.readInt(0x10_0010));
    }

    @Test
    void memoryEndingAtTopOfAddressSpaceStillBoundsChecks() {
        long base = Long.MAX_VALUE - SIZE;  // base + size == Long.MAX_VALUE: the highest end that does not overflow
        GuestMemory m = GuestMemory.of(base, MemorySegment.ofArray(new byte[(int) SIZE]));
        long last = Long.MAX_VALUE - 1;
        assertTrue(m.contains(base, SIZE));
        assertTrue(m.contains(last, 1));
        assertFalse(m.contains(last, 2));
        assertFalse(m.contains(Long.MAX_VALUE, 1));
        assertFalse(m.contains(base - 1, 1));
        assertFalse(m.contains(Long.MIN_VALUE, 1));
        assertFalse(m.contains(Long.MIN_VALUE, 0));
        m.writeByte(last, (byte) 7);
        assertEquals(7, m.readByte(last));
        assertThrows(GuestMemoryException.class, () -> m.readLong(last - 6));
        assertThrows(GuestMemoryException.class, () -> m.readLong(Long.MAX_VALUE));
    }

    @Test
    void refusesMemoryThatWouldExtendPastTheTopOfTheAddressSpace() {
        // base + size overflows: without a check at construction, address - base wraps and a negative
        // guest-physical address (Long.MIN_VALUE) lands inside the segment at offset 11.
        MemorySegment segment = MemorySegment.ofArray(new byte[(int) SIZE]);
        GuestMemory m;
        try {
            m = GuestMemory.of(Long.MAX_VALUE - 10, segment);
        } catch (IllegalArgumentException refused) {
            return;
        }
        assertFalse(m.contains(Long.MIN_VALUE, 1),
                "GuestMemory.of(Long.MAX_VALUE - 10, 4 KiB) accepted, and it claims to contain address Long.MIN_VALUE");
    }

    @Test
    void rejectedAccessTouchesNothing() {
        java.util.Arrays.fill(backing, (byte) 0x5a);
        assertThrows(GuestMemoryException.class, () -> zeroBased.writeLong(SIZE - 7, -1L));
        assertThrows(GuestMemoryException.class, () -> zeroBased.write(SIZE - 2, new byte[] {1, 2, 3}));
        assertThrows(GuestMemoryException.class, () -> zeroBased.writeInt(-2, -1));
        for (byte b : backing) {
            assertEquals(0x5a, b);
        }
    }

    @Test
    void readsAndWritesLittleEndian() {
        zeroBased.writeLong(8, 0x0102030405060708L);
        assertEquals(0x08, backing[8]);
        assertEquals(0x01, backing[15]);
        assertEquals(0x0102030405060708L, zeroBased.readLong(8));
        zeroBased.writeShort(3, (short) 0xbeef);  // unaligned
        assertEquals((byte) 0xef, backing[3]);
        assertEquals((byte) 0xbe, backing[4]);
        zeroBased.writeInt(17, 0xcafebabe);
        assertEquals(0xcafebabe, zeroBased.readInt(17));
        zeroBased.writeByte(SIZE - 1, (byte) 0x7f);
        assertEquals(0x7f, zeroBased.readByte(SIZE - 1));
        zeroBased.write(100, new byte[] {1, 2, 3});
        assertArrayEquals(new byte[] {1, 2, 3}, zeroBased.read(100, 3));
        assertArrayEquals(new byte[0], zeroBased.read(SIZE, 0));
    }

    @Test
    void accessesAtTheLastBytesSucceedAndOneFurtherFail() {
        zeroBased.writeLong(SIZE - 8, -1L);
        assertThrows(GuestMemoryException.class, () -> zeroBased.readLong(SIZE - 7));
        assertThrows(GuestMemoryException.class, () -> zeroBased.readInt(SIZE - 3));
        assertThrows(GuestMemoryException.class, () -> zeroBased.readByte(SIZE));
        assertThrows(GuestMemoryException.class, () -> zeroBased.read(SIZE - 1, 2));
        assertThrows(GuestMemoryException.class, () -> zeroBased.read(0, -1));
    }

    @Test
    void sliceIsAViewOfTheRequestedRange() {
        MemorySegment s = zeroBased.slice(16, 32);
        assertEquals(32, s.byteSize());
        s.fill((byte) 1);
        assertEquals(0, backing[15]);
        assertEquals(1, backing[16]);
        assertEquals(1, backing[47]);
        assertEquals(0, backing[48]);
    }

    @Test
    void exceptionMessageNamesRangeAndMemory() {
        GuestMemoryException e = assertThrows(GuestMemoryException.class, () -> high.readInt(0x20_0000));
        assertEquals("guest range [0x200000, +0x4) is outside guest memory [0x100000, 0x101000)", e.getMessage());
    }

    @Test
    void worksOverNativeMemory() {
        try (Arena arena = Arena.ofConfined()) {
            GuestMemory m = GuestMemory.of(0, arena.allocate(2L << 20));
            m.writeLong((2L << 20) - 8, 42);
            assertEquals(42, m.readLong((2L << 20) - 8));
            assertThrows(GuestMemoryException.class, () -> m.readLong((2L << 20) - 4));
        }
    }

    @Test
    void containsAgreesWithExactArithmeticOnRandomRanges() {
        Random random = new Random(7);
        long[] interesting = {0, 1, SIZE - 1, SIZE, SIZE + 1, -1, Long.MAX_VALUE, Long.MIN_VALUE, Long.MAX_VALUE - SIZE};
        for (int i = 0; i < 100_000; i++) {
            long address = random.nextBoolean() ? interesting[random.nextInt(interesting.length)] + random.nextInt(5) - 2 : random.nextLong();
            long length = random.nextBoolean() ? interesting[random.nextInt(interesting.length)] + random.nextInt(5) - 2 : random.nextLong();
            boolean expected = java.math.BigInteger.valueOf(address).signum() >= 0 && length >= 0
                    && java.math.BigInteger.valueOf(address).add(java.math.BigInteger.valueOf(length))
                            .compareTo(java.math.BigInteger.valueOf(SIZE)) <= 0;
            assertEquals(expected, zeroBased.contains(address, length), () -> address + " +" + length);
        }
    }
}
