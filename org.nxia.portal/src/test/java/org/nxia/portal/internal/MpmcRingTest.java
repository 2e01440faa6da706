package org.nxia.portal.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nxia.portal.api.PortalException;

class MpmcRingTest {

    private final Arena arena = Arena.ofShared();

    @AfterEach
    void close() {
        arena.close();
    }

    private MemorySegment region(int slots, int slotSize) {
        return arena.allocate(MpmcRing.requiredSize(slots, slotSize), 64);
    }

    private static MemorySegment bytes(int... values) {
        byte[] b = new byte[values.length];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) values[i];
        }
        return MemorySegment.ofArray(b);
    }

    @Test
    void isEmptyUntilAMessageIsPublishedAndAgainOnceItIsTaken() {
        MpmcRing ring = MpmcRing.format(region(4, 64), 4, 64);
        assertTrue(ring.isEmpty());
        assertTrue(ring.offer(bytes(1, 2, 3)));
        assertFalse(ring.isEmpty(), "a published message is waiting");
        assertEquals(3, ring.poll(arena.allocate(64)));
        assertTrue(ring.isEmpty());
    }

    @Test
    void keepsOrderAndReportsFullAndEmpty() {
        MpmcRing ring = MpmcRing.format(region(4, 64), 4, 64);
        MemorySegment into = arena.allocate(64);
        assertEquals(-1, ring.poll(into));
        for (int i = 0; i < 4; i++) {
            assertTrue(ring.offer(bytes(i, i, i)));
        }
        assertFalse(ring.offer(bytes(9)), "four slots hold four messages");
        for (int i = 0; i < 4; i++) {
            assertEquals(3, ring.poll(into));
            assertEquals((byte) i, into.get(ValueLayout.JAVA_BYTE, 0));
        }
        assertEquals(-1, ring.poll(into));
    }

    @Test
    void oversizeMessagesAndSmallBuffersAreRefused() {
        MpmcRing ring = MpmcRing.format(region(2, 64), 2, 64);
        assertEquals(48, ring.maxMessage());
        assertThrows(PortalException.class, () -> ring.offer(MemorySegment.ofArray(new byte[49])));
        assertTrue(ring.offer(MemorySegment.ofArray(new byte[48])));
        assertThrows(PortalException.class, () -> ring.poll(arena.allocate(47)));
        assertEquals(48, ring.poll(arena.allocate(48)), "the message stayed in the ring");
    }

    @Test
    void attachRefusesBadHeaders() {
        MemorySegment seg = region(4, 64);
        MpmcRing.format(seg, 4, 64);
        MpmcRing.attach(seg);
        seg.set(ValueLayout.JAVA_INT, MpmcRing.OFF_SLOTS, 3);
        assertThrows(PortalException.class, () -> MpmcRing.attach(seg), "slot count not a power of two");
        seg.set(ValueLayout.JAVA_INT, MpmcRing.OFF_SLOTS, 8);
        assertThrows(PortalException.class, () -> MpmcRing.attach(seg), "more slots than the segment holds");
        seg.set(ValueLayout.JAVA_INT, MpmcRing.OFF_SLOTS, 4);
        seg.set(ValueLayout.JAVA_INT, MpmcRing.OFF_SLOT_SIZE, 80);
        assertThrows(PortalException.class, () -> MpmcRing.attach(seg), "slot size not a multiple of 64");
        seg.set(ValueLayout.JAVA_INT, MpmcRing.OFF_MAGIC, 0);
        assertThrows(PortalException.class, () -> MpmcRing.attach(seg));
    }

    @Test
    void corruptLengthOrSequencesFailCleanly() {
        MemorySegment seg = region(4, 64);
        MpmcRing ring = MpmcRing.format(seg, 4, 64);
        ring.offer(bytes(1, 2, 3));
        seg.set(ValueLayout.JAVA_INT, MpmcRing.DATA_OFFSET + 8, 0x7fff_ffff);
        assertThrows(PortalException.class, () -> ring.poll(arena.allocate(64)));
        // A peer that moves the enqueue position far ahead makes every slot look a lap behind: "full", not a crash.
        seg.set(ValueLayout.JAVA_LONG, MpmcRing.OFF_ENQUEUE, 1L << 40);
        assertFalse(ring.offer(bytes(1)));
    }

    /** 10^6 checksummed messages from 2 producer threads to 2 consumer threads: none lost, none duplicated. */
    @Test
    void millionMessagesAcrossTwoProducersAndTwoConsumers() throws Exception {
        MpmcRing ring = MpmcRing.format(region(256, 64), 256, 64);
        int producers = 2;
        int consumers = 2;
        int perProducer = 500_000;
        AtomicLong sum = new AtomicLong();
        AtomicLong count = new AtomicLong();
        AtomicInteger done = new AtomicInteger();
        List<Thread> threads = new ArrayList<>();
        for (int p = 0; p < producers; p++) {
            long id = p;
            threads.add(Thread.ofPlatform().start(() -> {
                MemorySegment m = MemorySegment.ofArray(new long[2]);
                for (long i = 0; i < perProducer; i++) {
                    m.set(ValueLayout.JAVA_LONG, 0, id);
                    m.set(ValueLayout.JAVA_LONG, 8, i);
                    while (!ring.offer(m)) {
                        Thread.onSpinWait();
                    }
                }
                done.incrementAndGet();
            }));
        }
        for (int c = 0; c < consumers; c++) {
            threads.add(Thread.ofPlatform().start(() -> {
                MemorySegment into = MemorySegment.ofArray(new long[2]);
                long s = 0;
                long n = 0;
                while (true) {
                    boolean finished = done.get() == producers; // read before the poll: nothing can arrive after an empty poll
                    int len = ring.poll(into);
                    if (len == 16) {
                        s += into.get(ValueLayout.JAVA_LONG, 0) * 1_000_003 + into.get(ValueLayout.JAVA_LONG, 8);
                        n++;
                    } else if (finished) {
                        break;
                    } else {
                        Thread.onSpinWait();
                    }
                }
                sum.addAndGet(s);
                count.addAndGet(n);
            }));
        }
        for (Thread t : threads) {
            t.join();
        }
        long want = 0;
        for (long p = 0; p < producers; p++) {
            for (long i = 0; i < perProducer; i++) {
                want += p * 1_000_003 + i;
            }
        }
        assertEquals((long) producers * perProducer, count.get());
        assertEquals(want, sum.get());
    }
}
