package org.nxia.device.vmbus.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.nxia.device.vmbus.internal.Ring.*;

import java.lang.foreign.MemorySegment;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.GuestMemory;

/**
 * A ring byte for byte: what the host writes is what Linux's reader expects (descriptor, payload,
 * zero padding, trailer, index), a packet wraps across the end and across pages that are not
 * contiguous, and every index and length the guest controls is checked at its bound.
 */
class RingTest {

    private final GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new long[64 * 1024 / 8]));
    /** Header at 0x1000; data pages at 0x5000, 0x3000, 0x8000: out of order, as a GPADL may list them. */
    private final long[] pages = {0x1000, 0x5000, 0x3000, 0x8000};
    private final Ring ring = new Ring(memory, pages);

    private long dataAddress(int offset) {
        return pages[1 + offset / PAGE] + offset % PAGE;
    }

    private int header(int field) {
        return memory.readInt(pages[0] + field);
    }

    private void setHeader(int field, int value) {
        memory.writeInt(pages[0] + field, value);
    }

    @Test
    void aWrittenPacketIsWhatLinuxReads() {
        memory.slice(0x5000, PAGE).fill((byte) 0x5a);   // what was there before must not show through the padding
        byte[] payload = {1, 2, 3, 4, 5};
        assertEquals(Written.SIGNAL, ring.write(payload, payload.length, 0x1122_3344_5566_7788L), "an empty ring whose reader listens");
        assertEquals(DATA_INBAND, memory.readShort(dataAddress(DESC_TYPE)));
        assertEquals(2, memory.readShort(dataAddress(DESC_OFFSET8)), "the payload right after the 16-byte descriptor");
        assertEquals(3, memory.readShort(dataAddress(DESC_LEN8)), "16 + 5 bytes, padded to 24");
        assertEquals(0, memory.readShort(dataAddress(DESC_FLAGS)));
        assertEquals(0x1122_3344_5566_7788L, memory.readLong(dataAddress(DESC_TRANSACTION)));
        assertArrayEquals(payload, memory.read(dataAddress(16), 5));
        assertArrayEquals(new byte[3], memory.read(dataAddress(21), 3), "zero padding");
        assertEquals(0L, memory.readLong(dataAddress(24)), "the trailer: the packet's start (0) in the high half");
        assertEquals(32, header(WRITE_INDEX));
        // the second packet's trailer names where it began
        byte[] longer = new byte[40];
        assertEquals(Written.QUIET, ring.write(longer, longer.length, 7), "the reader has not caught up: no signal");
        assertEquals(7, memory.readLong(dataAddress(32 + DESC_TRANSACTION)), "the descriptor's old fields are gone");
        assertEquals(7, memory.readShort(dataAddress(32 + DESC_LEN8)));
        assertEquals(32L << 32, memory.readLong(dataAddress(32 + 56)));
        assertEquals(32 + 56 + 8, header(WRITE_INDEX));
    }

    @Test
    void theReaderGetsEachPacketAndMovesItsIndex() {
        Packet p = new Packet();
        byte[] into = new byte[64];
        assertFalse(ring.read(into, p), "empty");
        ring.write(new byte[] {9, 8, 7}, 3, -2L);
        assertTrue(ring.read(into, p));
        assertEquals(8, p.length, "the payload as the ring holds it: padded to 8 bytes (the protocol keeps no exact length)");
        assertEquals(DATA_INBAND, p.type);
        assertEquals(-2L, p.transaction, "all 64 bits");
        assertEquals(9, into[0]);
        assertEquals(7, into[2]);
        assertEquals(16 + 8 + 8, header(READ_INDEX));
        assertFalse(ring.read(into, p));
    }

    @Test
    void aPacketWithItsPayloadFurtherInIsReadFromThere() {
        // a descriptor of 32 bytes (offset8 4), 48 bytes in all, by hand
        memory.writeShort(dataAddress(DESC_TYPE), (short) 0x0b);
        memory.writeShort(dataAddress(DESC_OFFSET8), (short) 4);
        memory.writeShort(dataAddress(DESC_LEN8), (short) 6);
        memory.writeLong(dataAddress(DESC_TRANSACTION), 0x0102_0304_0506_0708L);
        for (int i = 0; i < 16; i++) {
            memory.writeByte(dataAddress(32 + i), (byte) (100 + i));
        }
        setHeader(WRITE_INDEX, 48 + 8);
        Packet p = new Packet();
        byte[] into = new byte[16];
        assertTrue(ring.read(into, p));
        assertEquals(0x0b, p.type);
        assertEquals(16, p.length);
        assertEquals(0x0102_0304_0506_0708L, p.transaction);
        assertEquals(100, into[0]);
        assertEquals(115, into[15]);
        assertEquals(56, header(READ_INDEX));
    }

    @Test
    void aPacketWrapsAcrossTheEndAndAcrossPagesThatAreNotContiguous() {
        int start = 3 * PAGE - 24;   // 24 bytes before the end of the data
        setHeader(WRITE_INDEX, start);
        setHeader(READ_INDEX, start);
        byte[] payload = new byte[40];
        for (int i = 0; i < payload.length; i++) {
            payload[i] = (byte) (i + 1);
        }
        assertEquals(Written.SIGNAL, ring.write(payload, payload.length, 5));
        assertEquals(2, memory.readShort(dataAddress(start + DESC_OFFSET8)), "the descriptor at the end of page 0x8000");
        assertEquals(1, memory.readByte(dataAddress(start + 16)), "the payload's first byte before the end");
        assertEquals(9, memory.readByte(0x5000), "its ninth at the start of the first data page");
        assertEquals((16 + 40 + 8) - 24, header(WRITE_INDEX), "the write index wrapped");
        // and a packet that crosses from one data page to the next, at a page that is not the next address
        Packet p = new Packet();
        byte[] into = new byte[64];
        assertTrue(ring.read(into, p));
        assertArrayEquals(payload, java.util.Arrays.copyOf(into, 40));
        assertEquals(header(WRITE_INDEX), header(READ_INDEX));
        setHeader(WRITE_INDEX, PAGE - 8);
        setHeader(READ_INDEX, PAGE - 8);
        ring.write(payload, payload.length, 6);
        assertEquals(2, memory.readShort(0x5000 + PAGE - 8 + DESC_OFFSET8));
        assertEquals(0x0006, memory.readLong(0x3000 + DESC_TRANSACTION - 8), "the transaction on the second data page, at 0x3000");
        assertTrue(ring.read(into, p));
        assertArrayEquals(payload, java.util.Arrays.copyOf(into, 40));
    }

    @Test
    void aFullRingTakesNothingAndTheBoundIsStrict() {
        // 3 pages of data: a packet of 16 + 8 bytes with its trailer needs 32 bytes and strictly more free
        int data = 3 * PAGE;
        setHeader(READ_INDEX, 0);
        setHeader(WRITE_INDEX, data - 40);          // 40 bytes free
        assertEquals(Written.FULL, ring.write(new byte[16], 16, 1), "16 + 16 + 8 = 40: not strictly less than free");
        assertEquals(data - 40, header(WRITE_INDEX));
        assertEquals(Written.QUIET, ring.write(new byte[8], 8, 1), "16 + 8 + 8 = 32 < 40");
        setHeader(READ_INDEX, 64);
        setHeader(WRITE_INDEX, 64);
        setHeader(INTERRUPT_MASK, 1);
        assertEquals(Written.QUIET, ring.write(new byte[8], 8, 1), "a reader that masked interrupts is not signalled");
    }

    @Test
    void indicesAndDescriptorsThatBreakTheRulesAreRefused() {
        int data = 3 * PAGE;
        byte[] into = new byte[32];
        Packet p = new Packet();
        setHeader(WRITE_INDEX, data - 8);   // the last valid index
        setHeader(READ_INDEX, data - 8);
        assertFalse(ring.read(into, p));
        for (int bad : new int[] {data, -8, 12}) {
            setHeader(WRITE_INDEX, bad);
            Malformed e = assertThrows(Malformed.class, () -> ring.read(into, p));
            assertTrue(e.getMessage().startsWith("ring write index " + bad), e.getMessage());
            assertThrows(Malformed.class, () -> ring.write(new byte[1], 1, 1));
        }
        setHeader(WRITE_INDEX, 0);
        setHeader(READ_INDEX, data);
        assertTrue(assertThrows(Malformed.class, () -> ring.read(into, p)).getMessage().startsWith("ring read index"));
        setHeader(READ_INDEX, 0);
        setHeader(WRITE_INDEX, 16);   // less than a descriptor and a trailer
        assertThrows(Malformed.class, () -> ring.read(into, p));
        // a descriptor whose payload starts inside it, or past its end, or that runs past what was written
        setHeader(WRITE_INDEX, 48);
        memory.writeShort(dataAddress(DESC_LEN8), (short) 5);
        memory.writeShort(dataAddress(DESC_OFFSET8), (short) 1);
        assertThrows(Malformed.class, () -> ring.read(into, p));
        memory.writeShort(dataAddress(DESC_OFFSET8), (short) 6);
        assertThrows(Malformed.class, () -> ring.read(into, p));
        memory.writeShort(dataAddress(DESC_OFFSET8), (short) 2);
        memory.writeShort(dataAddress(DESC_LEN8), (short) 6);   // 48 + 8 > 48 written
        assertThrows(Malformed.class, () -> ring.read(into, p));
        memory.writeShort(dataAddress(DESC_LEN8), (short) 5);   // 40 + 8 = 48: exactly what was written
        assertTrue(ring.read(into, p));
        assertEquals(24, p.length);
        // a payload longer than the channel takes
        setHeader(READ_INDEX, 0);
        setHeader(WRITE_INDEX, 64);
        memory.writeShort(dataAddress(DESC_LEN8), (short) 7);   // 56 - 16 = 40 payload bytes > 32
        assertTrue(assertThrows(Malformed.class, () -> ring.read(into, p)).getMessage().contains("more than the 32"));
        assertThrows(IllegalArgumentException.class, () -> new Ring(memory, new long[] {0x1000}));
    }
}
