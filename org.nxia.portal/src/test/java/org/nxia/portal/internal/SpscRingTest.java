package org.nxia.portal.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nxia.portal.api.PortalException;

class SpscRingTest {
    private final Arena arena = Arena.ofShared();

    @AfterEach
    void close() {
        arena.close();
    }

    private MemorySegment region(int capacity) {
        return arena.allocate(SpscRing.requiredSize(capacity), 64);
    }

    private static MemorySegment bytes(int... values) {
        MemorySegment s = MemorySegment.ofArray(new byte[values.length]);
        for (int i = 0; i < values.length; i++) {
            s.set(ValueLayout.JAVA_BYTE, i, (byte) values[i]);
        }
        return s;
    }

    private static MemorySegment filled(int length, int value) {
        MemorySegment s = MemorySegment.ofArray(new byte[length]);
        s.fill((byte) value);
        return s;
    }

    @Test
    void isEmptyUntilAMessageIsPublishedAndAgainOnceItIsTaken() {
        SpscRing ring = SpscRing.format(region(256), 256);
        assertTrue(ring.isEmpty());
        assertTrue(ring.offer(bytes(1, 2, 3)));
        assertFalse(ring.isEmpty(), "a published message is waiting");
        assertEquals(3, ring.poll(MemorySegment.ofArray(new byte[64])));
        assertTrue(ring.isEmpty());
    }

    @Test
    void keepsMessagesInOrder() {
        SpscRing ring = SpscRing.format(region(256), 256);
        MemorySegment into = MemorySegment.ofArray(new byte[64]);
        assertTrue(ring.offer(bytes(1, 2, 3)));
        assertTrue(ring.offer(bytes()));
        assertTrue(ring.offer(bytes(9)));
        assertEquals(3, ring.poll(into));
        assertEquals(3, into.get(ValueLayout.JAVA_BYTE, 2));
        assertEquals(0, ring.poll(into));
        assertEquals(1, ring.poll(into));
        assertEquals(9, into.get(ValueLayout.JAVA_BYTE, 0));
        assertEquals(-1, ring.poll(into));
    }

    @Test
    void wrapsAroundTheEndOfTheDataArea() {
        SpscRing ring = SpscRing.format(region(64), 64);
        MemorySegment into = MemorySegment.ofArray(new byte[64]);
        for (int i = 0; i < 100; i++) { // 20-byte messages take 24-byte records: never a multiple of 64
            assertTrue(ring.offer(filled(20, i)), "offer " + i);
            assertEquals(20, ring.poll(into));
            assertEquals((byte) i, into.get(ValueLayout.JAVA_BYTE, 19));
        }
        // The largest message fits once the ring drains, wherever the indices stand.
        MemorySegment big = filled(SpscRing.maxMessage(64), 5);
        boolean offered = ring.offer(big) || ring.poll(into) == -1 && ring.offer(big);
        assertTrue(offered);
        assertEquals(60, ring.poll(into));
        assertEquals(-1, ring.poll(into));
    }

    @Test
    void reportsFullAndEmpty() {
        SpscRing ring = SpscRing.format(region(64), 64);
        MemorySegment into = MemorySegment.ofArray(new byte[64]);
        assertEquals(-1, ring.poll(into));
        assertTrue(ring.offer(filled(12, 1))); // 16-byte records
        assertTrue(ring.offer(filled(12, 2)));
        assertTrue(ring.offer(filled(12, 3)));
        assertTrue(ring.offer(filled(12, 4)));
        assertFalse(ring.offer(filled(0, 5)));
        assertEquals(12, ring.poll(into));
        assertEquals(1, into.get(ValueLayout.JAVA_BYTE, 0));
        assertTrue(ring.offer(filled(12, 5)));
        for (int v = 2; v <= 5; v++) {
            assertEquals(12, ring.poll(into));
            assertEquals(v, into.get(ValueLayout.JAVA_BYTE, 0));
        }
        assertEquals(-1, ring.poll(into));
    }

    @Test
    void oversizeMessagesAreRefused() {
        SpscRing ring = SpscRing.format(region(64), 64);
        assertThrows(PortalException.class, () -> ring.offer(filled(61, 0)));
        assertTrue(ring.offer(filled(40, 7)));
        MemorySegment small = MemorySegment.ofArray(new byte[39]);
        PortalException e = assertThrows(PortalException.class, () -> ring.poll(small));
        assertTrue(e.getMessage().contains("stays in the ring"), e.getMessage());
        MemorySegment into = MemorySegment.ofArray(new byte[40]);
        assertEquals(40, ring.poll(into)); // the message stayed
        assertEquals(7, into.get(ValueLayout.JAVA_BYTE, 39));
    }

    @Test
    void attachResumesWhereTheOtherSideLeftOff() {
        MemorySegment seg = region(128);
        SpscRing producer = SpscRing.format(seg, 128);
        assertTrue(producer.offer(bytes(1, 2)));
        SpscRing consumer = SpscRing.attach(seg);
        assertEquals(128, consumer.capacity());
        MemorySegment into = MemorySegment.ofArray(new byte[8]);
        assertEquals(2, consumer.poll(into));
        assertEquals(-1, consumer.poll(into));
    }

    @Test
    void attachRefusesCorruptHeadersAndIndices() {
        MemorySegment seg = region(256);
        SpscRing.format(seg, 256);
        corruptIntAndExpectRefusal(seg, SpscRing.OFF_MAGIC, 0);
        corruptIntAndExpectRefusal(seg, SpscRing.OFF_VERSION, 7);
        corruptIntAndExpectRefusal(seg, SpscRing.OFF_CAPACITY, 100);
        corruptIntAndExpectRefusal(seg, SpscRing.OFF_CAPACITY, 512); // larger than the segment
        corruptIntAndExpectRefusal(seg, SpscRing.OFF_CAPACITY, 32);
        corruptIntAndExpectRefusal(seg, SpscRing.OFF_CAPACITY, 1 << 31);
        setIndices(seg, 1000, 1008); // consumer ahead of producer
        assertThrows(PortalException.class, () -> SpscRing.attach(seg));
        setIndices(seg, 1000 + 256 + 8, 1000); // producer more than a ring ahead
        assertThrows(PortalException.class, () -> SpscRing.attach(seg));
        setIndices(seg, 1004, 1000); // not a record boundary
        assertThrows(PortalException.class, () -> SpscRing.attach(seg));
        setIndices(seg, -8, 0); // 2^64 - 8: wildly ahead
        assertThrows(PortalException.class, () -> SpscRing.attach(seg));
        setIndices(seg, 1000 + 256, 1000); // full but consistent
        SpscRing.attach(seg);
        assertThrows(PortalException.class, () -> SpscRing.attach(seg.asSlice(0, 100)));
    }

    private static void setIndices(MemorySegment seg, long producer, long consumer) {
        seg.set(ValueLayout.JAVA_LONG, SpscRing.OFF_PRODUCER, producer);
        seg.set(ValueLayout.JAVA_LONG, SpscRing.OFF_CONSUMER, consumer);
    }

    private static void corruptIntAndExpectRefusal(MemorySegment seg, long offset, int value) {
        int saved = seg.get(ValueLayout.JAVA_INT, offset);
        seg.set(ValueLayout.JAVA_INT, offset, value);
        try {
            PortalException e = assertThrows(PortalException.class, () -> SpscRing.attach(seg));
            assertTrue(e.getMessage().startsWith("SpscRing.attach"), e.getMessage());
        } finally {
            seg.set(ValueLayout.JAVA_INT, offset, saved);
        }
    }

    @Test
    void corruptRecordLengthIsRefusedWithoutOutOfBoundsAccess() {
        MemorySegment seg = region(128);
        SpscRing ring = SpscRing.format(seg, 128);
        MemorySegment into = MemorySegment.ofArray(new byte[1024]);
        assertTrue(ring.offer(bytes(1, 2, 3)));
        for (int bad : new int[] {0x7FFFFFFF, -2, 128, 125, 5, 0xFFFFFFF0}) {
            seg.set(ValueLayout.JAVA_INT, SpscRing.DATA_OFFSET, bad);
            PortalException e = assertThrows(PortalException.class, () -> ring.poll(into), "length " + bad);
            assertTrue(e.getMessage().contains("corrupt"), e.getMessage());
        }
        // A wrap marker that skips more than was published.
        seg.set(ValueLayout.JAVA_INT, SpscRing.DATA_OFFSET, SpscRing.WRAP_MARKER);
        assertThrows(PortalException.class, () -> ring.poll(into));
        seg.set(ValueLayout.JAVA_INT, SpscRing.DATA_OFFSET, 3);
        assertEquals(3, ring.poll(into)); // the honest record still reads
    }

    @Test
    void corruptPeerIndicesAreRefused() {
        MemorySegment seg = region(128);
        SpscRing ring = SpscRing.format(seg, 128);
        MemorySegment into = MemorySegment.ofArray(new byte[64]);
        seg.set(ValueLayout.JAVA_LONG, SpscRing.OFF_PRODUCER, 136); // a producer more than a ring ahead
        assertThrows(PortalException.class, () -> ring.poll(into));
        seg.set(ValueLayout.JAVA_LONG, SpscRing.OFF_PRODUCER, 0);
        seg.set(ValueLayout.JAVA_LONG, SpscRing.OFF_CONSUMER, 64); // a consumer ahead of the producer
        assertThrows(PortalException.class, () -> ring.offer(bytes(1)));
    }

    @Test
    void millionMessagesCrossTwoThreadsWithoutLossDuplicationOrReordering() throws Exception {
        int count = 1_000_000;
        SpscRing ring = SpscRing.format(region(4096), 4096);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        long[] sums = new long[2];
        Thread producer = Thread.ofPlatform().start(() -> {
            try {
                MemorySegment msg = MemorySegment.ofArray(new long[32]); // up to 256 bytes
                long sum = 0;
                for (int seq = 0; seq < count; seq++) {
                    int length = 8 + (seq % 97); // sequence number + varying payload
                    MemorySegment m = msg.asSlice(0, length);
                    m.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, seq);
                    for (int i = 8; i < length; i++) {
                        m.set(ValueLayout.JAVA_BYTE, i, (byte) (seq * 31 + i));
                    }
                    sum += checksum(m, length);
                    while (!ring.offer(m)) {
                        if (failure.get() != null) {
                            return;
                        }
                        Thread.onSpinWait();
                    }
                }
                sums[0] = sum;
            } catch (Throwable e) {
                failure.compareAndSet(null, e);
            }
        });
        Thread consumer = Thread.ofPlatform().start(() -> {
            try {
                MemorySegment into = MemorySegment.ofArray(new byte[256]);
                long sum = 0;
                for (int expected = 0; expected < count; expected++) {
                    int length;
                    while ((length = ring.poll(into)) < 0) {
                        if (failure.get() != null) {
                            return;
                        }
                        Thread.onSpinWait();
                    }
                    long seq = into.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
                    if (seq != expected || length != 8 + (expected % 97)) {
                        throw new AssertionError("expected message " + expected + ", got " + seq + " of length "
                                + length);
                    }
                    for (int i = 8; i < length; i++) {
                        if (into.get(ValueLayout.JAVA_BYTE, i) != (byte) (expected * 31 + i)) {
                            throw new AssertionError("message " + expected + " corrupt at byte " + i);
                        }
                    }
                    sum += checksum(into, length);
                }
                if (ring.poll(into) != -1) {
                    throw new AssertionError("a message beyond the last was received");
                }
                sums[1] = sum;
            } catch (Throwable e) {
                failure.compareAndSet(null, e);
            }
        });
        producer.join();
        consumer.join();
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
        assertEquals(sums[0], sums[1]);
    }

    private static long checksum(MemorySegment m, int length) {
        long h = 1125899906842597L;
        for (int i = 0; i < length; i++) {
            h = 31 * h + m.get(ValueLayout.JAVA_BYTE, i);
        }
        return h;
    }
}
