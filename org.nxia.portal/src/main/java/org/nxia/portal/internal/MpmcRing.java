package org.nxia.portal.internal;

import static org.nxia.portal.internal.Shared.INT;
import static org.nxia.portal.internal.Shared.LONG;

import java.lang.foreign.MemorySegment;

import org.nxia.portal.api.PortalException;
import org.nxia.portal.api.Ring;

/**
 * A bounded multi-producer/multi-consumer queue of byte messages (Vyukov's
 * bounded queue: a sequence number per slot) over any 8-byte aligned
 * {@link MemorySegment}; the byte layout is specified in
 * {@code docs/portal-abi.md}, "MPMC ring".
 *
 * <p>Layout: a 64-byte header (magic, version, slot count, slot size), the
 * enqueue position at offset 64 and the dequeue position at offset 128 (each
 * alone on a cache line, u64, free-running), and the slots at offset 192. A
 * slot is a u64 sequence, a u32 length, 4 reserved bytes and the payload; its
 * size is a multiple of 64 so no two slots share a cache line.
 *
 * <p>A producer claims position {@code pos} when slot {@code pos % n} has
 * sequence {@code pos} by a compare-and-set of the enqueue position, writes the
 * message and publishes it with a release store of sequence {@code pos + 1}. A
 * consumer claims it when the sequence is {@code pos + 1} by a compare-and-set
 * of the dequeue position, copies the message out and frees the slot with a
 * release store of sequence {@code pos + n}. Sequences are acquire loads.
 *
 * <p>Everything in shared memory is untrusted: the slot index is masked and a
 * length is checked before any copy, so a hostile peer can lose or reorder
 * messages but never cause an access outside the ring. Any number of threads
 * may call {@link #offer} and {@link #poll} on one object.
 */
public final class MpmcRing implements Ring {
    /** "NXPM" as little-endian bytes 'N' 'X' 'P' 'M'. */
    public static final int MAGIC = 0x4D50584E;
    public static final int VERSION = 1;
    public static final int MIN_SLOTS = 2;
    public static final int MAX_SLOTS = 1 << 20;
    public static final int MIN_SLOT_SIZE = 64;
    public static final int MAX_SLOT_SIZE = 1 << 20;
    public static final int SLOT_HEADER = 16;
    /** How often a claim may lose a race before the ring is taken to be corrupt (a peer rewriting positions). */
    static final int MAX_RETRIES = 1 << 20;

    static final long OFF_MAGIC = 0;
    static final long OFF_VERSION = 4;
    static final long OFF_SLOTS = 8;
    static final long OFF_SLOT_SIZE = 12;
    static final long OFF_ENQUEUE = 64;
    static final long OFF_DEQUEUE = 128;
    public static final long DATA_OFFSET = 192;

    private final MemorySegment segment;
    private final int slots;
    private final long mask;
    private final int slotSize;

    private MpmcRing(MemorySegment segment, int slots, int slotSize) {
        this.segment = segment;
        this.slots = slots;
        this.mask = slots - 1;
        this.slotSize = slotSize;
    }

    /** Bytes a region needs for {@code slots} slots of {@code slotSize} bytes. */
    public static long requiredSize(int slots, int slotSize) {
        return DATA_OFFSET + (long) slots * slotSize;
    }

    /** Initializes an empty ring at the start of {@code segment}. */
    public static MpmcRing format(MemorySegment segment, int slots, int slotSize) {
        Shared.checkUsable(segment, "MpmcRing.format");
        checkGeometry(slots, slotSize, "MpmcRing.format");
        if (segment.byteSize() < requiredSize(slots, slotSize)) {
            throw new PortalException("MpmcRing.format: " + slots + " slots of " + slotSize + " bytes need "
                    + requiredSize(slots, slotSize) + " bytes, the segment has " + segment.byteSize());
        }
        segment.asSlice(0, requiredSize(slots, slotSize)).fill((byte) 0);
        for (long i = 0; i < slots; i++) {
            LONG.set(segment, DATA_OFFSET + i * slotSize, i);
        }
        INT.set(segment, OFF_VERSION, VERSION);
        INT.set(segment, OFF_SLOTS, slots);
        INT.set(segment, OFF_SLOT_SIZE, slotSize);
        INT.setRelease(segment, OFF_MAGIC, MAGIC); // magic last: a reader sees a complete ring
        return new MpmcRing(segment, slots, slotSize);
    }

    /** Attaches to a ring formatted by someone else, validating its header as untrusted. */
    public static MpmcRing attach(MemorySegment segment) {
        Shared.checkUsable(segment, "MpmcRing.attach");
        if (segment.byteSize() < DATA_OFFSET) {
            throw new PortalException("MpmcRing.attach: segment of " + segment.byteSize()
                    + " bytes is shorter than the " + DATA_OFFSET + "-byte header");
        }
        int magic = (int) INT.getAcquire(segment, OFF_MAGIC);
        if (magic != MAGIC) {
            throw new PortalException(String.format("MpmcRing.attach: bad magic 0x%08x (expected 0x%08x); "
                    + "the region is not a formatted MPMC ring", magic, MAGIC));
        }
        int version = (int) INT.get(segment, OFF_VERSION);
        if (version != VERSION) {
            throw new PortalException("MpmcRing.attach: unsupported version " + Integer.toUnsignedString(version)
                    + " (this bundle speaks version " + VERSION + ")");
        }
        int slots = (int) INT.get(segment, OFF_SLOTS);
        int slotSize = (int) INT.get(segment, OFF_SLOT_SIZE);
        checkGeometry(slots, slotSize, "MpmcRing.attach");
        if (segment.byteSize() < requiredSize(slots, slotSize)) {
            throw new PortalException("MpmcRing.attach: header claims " + slots + " slots of " + slotSize + " bytes ("
                    + requiredSize(slots, slotSize) + " bytes with header) but the segment has " + segment.byteSize());
        }
        return new MpmcRing(segment, slots, slotSize);
    }

    private static void checkGeometry(int slots, int slotSize, String what) {
        if (slots < MIN_SLOTS || slots > MAX_SLOTS || !Shared.isPowerOfTwo(slots)) {
            throw new PortalException(what + ": slot count " + Integer.toUnsignedString(slots)
                    + " must be a power of two in [" + MIN_SLOTS + ", " + MAX_SLOTS + "]");
        }
        if (slotSize < MIN_SLOT_SIZE || slotSize > MAX_SLOT_SIZE || slotSize % 64 != 0) {
            throw new PortalException(what + ": slot size " + Integer.toUnsignedString(slotSize)
                    + " must be a multiple of 64 in [" + MIN_SLOT_SIZE + ", " + MAX_SLOT_SIZE + "]");
        }
    }

    /** Largest message: the slot size less its 16-byte header. */
    public int maxMessage() {
        return slotSize - SLOT_HEADER;
    }

    public int slots() {
        return slots;
    }

    public int slotSize() {
        return slotSize;
    }

    @Override
    public boolean offer(MemorySegment message) {
        long length = message.byteSize();
        if (length > maxMessage()) {
            throw new PortalException("offer: a message of " + length + " bytes can never fit a slot of this ring"
                    + " (largest message " + maxMessage() + " bytes)");
        }
        long pos = (long) LONG.getAcquire(segment, OFF_ENQUEUE);
        for (int retry = 0; retry < MAX_RETRIES; retry++) {
            long slot = DATA_OFFSET + (pos & mask) * slotSize;
            long seq = (long) LONG.getAcquire(segment, slot);
            long dif = seq - pos;
            if (dif == 0) {
                long witness = (long) LONG.compareAndExchange(segment, OFF_ENQUEUE, pos, pos + 1);
                if (witness == pos) {
                    INT.set(segment, slot + 8, (int) length);
                    MemorySegment.copy(message, 0, segment, slot + SLOT_HEADER, length);
                    LONG.setRelease(segment, slot, pos + 1);
                    return true;
                }
                pos = witness;
            } else if (dif < 0) {
                return false; // the slot still holds a message from one lap ago: full
            } else {
                pos = (long) LONG.getAcquire(segment, OFF_ENQUEUE);
            }
        }
        throw new PortalException("offer: no slot claimed after " + MAX_RETRIES
                + " attempts; the ring's positions or sequences are corrupt");
    }

    @Override
    public int poll(MemorySegment into) {
        long pos = (long) LONG.getAcquire(segment, OFF_DEQUEUE);
        for (int retry = 0; retry < MAX_RETRIES; retry++) {
            long slot = DATA_OFFSET + (pos & mask) * slotSize;
            long seq = (long) LONG.getAcquire(segment, slot);
            long dif = seq - (pos + 1);
            if (dif == 0) {
                // Read before the claim: if the claim succeeds, nobody wrote the slot in between.
                long length = Integer.toUnsignedLong((int) INT.get(segment, slot + 8));
                if (length > maxMessage()) {
                    throw new PortalException("poll: corrupt message length " + length + " in slot " + (pos & mask)
                            + " (largest message " + maxMessage() + " bytes)");
                }
                if (length > into.byteSize()) {
                    throw new PortalException("poll: the next message has " + length + " bytes but the buffer has "
                            + into.byteSize() + "; the message stays in the ring, poll again with a larger buffer");
                }
                long witness = (long) LONG.compareAndExchange(segment, OFF_DEQUEUE, pos, pos + 1);
                if (witness == pos) {
                    MemorySegment.copy(segment, slot + SLOT_HEADER, into, 0, length);
                    LONG.setRelease(segment, slot, pos + slots);
                    return (int) length;
                }
                pos = witness;
            } else if (dif < 0) {
                return -1; // not yet published: empty
            } else {
                pos = (long) LONG.getAcquire(segment, OFF_DEQUEUE);
            }
        }
        throw new PortalException("poll: no slot claimed after " + MAX_RETRIES
                + " attempts; the ring's positions or sequences are corrupt");
    }

    /** The data bytes of all slots' payloads. */
    @Override
    public int capacity() {
        return (int) Math.min(Integer.MAX_VALUE, (long) slots * maxMessage());
    }

    @Override
    public boolean isEmpty() {
        return (long) LONG.getAcquire(segment, OFF_ENQUEUE) == (long) LONG.getAcquire(segment, OFF_DEQUEUE);
    }
}
