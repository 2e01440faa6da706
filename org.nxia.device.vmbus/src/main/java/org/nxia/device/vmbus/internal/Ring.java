package org.nxia.device.vmbus.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

import org.nxia.vmm.spi.GuestMemory;

/**
 * One direction of a channel's ring buffer, over guest pages of its GPADL (not contiguous): a header
 * page (write index, read index, interrupt mask, pending-send size, feature bits), then the data
 * pages. Indices are byte offsets into the data, 8-byte aligned, wrapping; empty when they are equal.
 * A packet is a 16-byte descriptor (type, offset8, len8, flags, transaction id), its payload at
 * offset8 * 8, padded to len8 * 8 bytes, then an 8-byte trailer. The same code serves both ends:
 * the host reads the guest's outbound ring and writes its inbound one.
 *
 * <p>Every index and length comes from the guest: each is checked before use, and a ring that
 * breaks the rules throws {@link Malformed}, which closes the channel.
 */
final class Ring {

    static final int WRITE_INDEX = 0;
    static final int READ_INDEX = 4;
    static final int INTERRUPT_MASK = 8;
    static final int PENDING_SEND_SIZE = 12;
    static final int FEATURE_BITS = 64;
    static final int DESCRIPTOR_BYTES = 16;
    static final int TRAILER_BYTES = 8;
    static final int DESC_TYPE = 0;
    static final int DESC_OFFSET8 = 2;
    static final int DESC_LEN8 = 4;
    static final int DESC_FLAGS = 6;
    static final int DESC_TRANSACTION = 8;
    static final int DATA_INBAND = 6;
    static final int PAGE = 4096;

    /** A ring that breaks the rules: its channel is closed. */
    static final class Malformed extends RuntimeException {
        Malformed(String message) {
            super(message);
        }
    }

    private final GuestMemory memory;
    private final long[] pages;
    private final int dataBytes;
    private final byte[] descriptor = new byte[DESCRIPTOR_BYTES];
    private final byte[] trailer = new byte[TRAILER_BYTES];

    /** @param pages the guest-physical address of each page, the header's first; at least two */
    Ring(GuestMemory memory, long[] pages) {
        if (pages.length < 2) {
            throw new IllegalArgumentException("a ring is a header page and at least one data page, not " + pages.length + " pages");
        }
        this.memory = memory;
        this.pages = pages.clone();
        this.dataBytes = (pages.length - 1) * PAGE;
    }

    private int header(int field) {
        return memory.readInt(pages[0] + field);
    }

    private void setHeader(int field, int value) {
        memory.writeInt(pages[0] + field, value);
    }

    private int index(int field) {
        int i = header(field);
        if (i < 0 || i >= dataBytes || (i & 7) != 0) {
            throw new Malformed("ring " + (field == WRITE_INDEX ? "write" : "read") + " index " + i + " outside its " + dataBytes
                    + " data bytes or not 8-aligned");
        }
        return i;
    }

    /** Bytes from {@code read} to {@code write}. */
    private int used(int read, int write) {
        return write >= read ? write - read : dataBytes - read + write;
    }

    private void copyOut(int at, byte[] into, int offset, int length) {
        for (int done = 0; done < length; ) {
            int in = (at + done) % dataBytes;
            int chunk = Math.min(length - done, PAGE - in % PAGE);
            MemorySegment.copy(memory.slice(pages[1 + in / PAGE] + in % PAGE, chunk), ValueLayout.JAVA_BYTE, 0, into, offset + done, chunk);
            done += chunk;
        }
    }

    private void copyIn(int at, byte[] from, int offset, int length) {
        for (int done = 0; done < length; ) {
            int in = (at + done) % dataBytes;
            int chunk = Math.min(length - done, PAGE - in % PAGE);
            MemorySegment.copy(from, offset + done, memory.slice(pages[1 + in / PAGE] + in % PAGE, chunk), ValueLayout.JAVA_BYTE, 0, chunk);
            done += chunk;
        }
    }

    /** What {@link #read} found: the packet's payload length, its type and transaction id. */
    static final class Packet {
        int type;
        int length;
        long transaction;
    }

    /**
     * Takes the next packet's payload into {@code into} and moves the read index past it.
     *
     * @return false if the ring is empty
     * @throws Malformed if the indices or the descriptor break the rules, or the payload is longer than {@code into}
     */
    boolean read(byte[] into, Packet packet) {
        int write = index(WRITE_INDEX);
        int read = index(READ_INDEX);
        if (read == write) {
            return false;
        }
        int used = used(read, write);
        if (used < DESCRIPTOR_BYTES + TRAILER_BYTES) {
            throw new Malformed(used + " bytes in the ring: less than a descriptor and its trailer");
        }
        VarHandle.acquireFence();   // the writer filled the packet before it moved the index
        copyOut(read, descriptor, 0, DESCRIPTOR_BYTES);
        int offset = (Vmbus.intAt(descriptor, DESC_OFFSET8) & 0xffff) * 8;
        int length = (Vmbus.intAt(descriptor, DESC_LEN8) & 0xffff) * 8;
        if (offset < DESCRIPTOR_BYTES || offset > length || length + TRAILER_BYTES > used) {
            throw new Malformed("a packet of " + length + " bytes with its payload at " + offset + ", with " + used + " bytes in the ring");
        }
        if (length - offset > into.length) {
            throw new Malformed("a packet of " + (length - offset) + " payload bytes: more than the " + into.length + " this channel takes");
        }
        packet.type = Vmbus.intAt(descriptor, DESC_TYPE) & 0xffff;
        packet.length = length - offset;
        packet.transaction = (Vmbus.intAt(descriptor, DESC_TRANSACTION) & 0xffff_ffffL) | (long) Vmbus.intAt(descriptor, DESC_TRANSACTION + 4) << 32;
        copyOut((read + offset) % dataBytes, into, 0, packet.length);
        VarHandle.releaseFence();   // done with the bytes before the writer may reuse them
        setHeader(READ_INDEX, (read + length + TRAILER_BYTES) % dataBytes);
        return true;
    }

    /** What {@link #write} did. */
    enum Written {
        /** No room: the reader has not caught up. */
        FULL,
        /** Written; the reader is busy or has masked interrupts: no signal needed. */
        QUIET,
        /** Written into an empty ring whose reader takes interrupts: signal it. */
        SIGNAL
    }

    /**
     * Writes a data packet with {@code length} payload bytes of {@code payload}: descriptor, payload
     * padded to 8 bytes, trailer, then the write index.
     *
     * @throws Malformed if the indices break the rules
     */
    Written write(byte[] payload, int length, long transaction) {
        int write = index(WRITE_INDEX);
        int read = index(READ_INDEX);
        int packetBytes = DESCRIPTOR_BYTES + ((length + 7) & ~7);
        int free = dataBytes - used(read, write);
        if (packetBytes + TRAILER_BYTES >= free) {
            return Written.FULL;
        }
        java.util.Arrays.fill(descriptor, (byte) 0);
        descriptor[DESC_TYPE] = DATA_INBAND;
        descriptor[DESC_OFFSET8] = DESCRIPTOR_BYTES / 8;
        descriptor[DESC_LEN8] = (byte) (packetBytes / 8);
        descriptor[DESC_LEN8 + 1] = (byte) (packetBytes / 8 >>> 8);
        Vmbus.putInt(descriptor, DESC_TRANSACTION, (int) transaction);
        Vmbus.putInt(descriptor, DESC_TRANSACTION + 4, (int) (transaction >>> 32));
        copyIn(write, descriptor, 0, DESCRIPTOR_BYTES);
        copyIn((write + DESCRIPTOR_BYTES) % dataBytes, payload, 0, length);
        byte[] zeros = ZEROS;
        copyIn((write + DESCRIPTOR_BYTES + length) % dataBytes, zeros, 0, packetBytes - DESCRIPTOR_BYTES - length);
        Vmbus.putInt(trailer, 4, write);
        copyIn((write + packetBytes) % dataBytes, trailer, 0, TRAILER_BYTES);
        VarHandle.releaseFence();   // the packet is in before the reader sees the index move
        setHeader(WRITE_INDEX, (write + packetBytes + TRAILER_BYTES) % dataBytes);
        VarHandle.fullFence();
        // signal when the reader had nothing left before this packet and has not masked interrupts
        return header(INTERRUPT_MASK) == 0 && header(READ_INDEX) == write ? Written.SIGNAL : Written.QUIET;
    }

    private static final byte[] ZEROS = new byte[8];
}
