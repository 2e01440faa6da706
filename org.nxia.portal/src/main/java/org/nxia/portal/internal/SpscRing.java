package org.nxia.portal.internal;

import static org.nxia.portal.internal.Shared.INT;
import static org.nxia.portal.internal.Shared.LONG;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.nxia.portal.api.PortalException;
import org.nxia.portal.api.Ring;

/**
 * A single-producer/single-consumer byte-message ring over any 8-byte aligned
 * {@link MemorySegment}; the byte layout is specified in
 * {@code docs/portal-abi.md}.
 *
 * <p>Layout: a 64-byte header (magic, version, capacity), the producer index at
 * offset 64 and the consumer index at offset 128 (each alone on a 64-byte cache
 * line, u64, free-running byte counts), and the data area at offset 192. A
 * record is a u32 length and the payload, padded to 8 bytes; it never wraps.
 * When the space to the end of the data area is too short, the producer writes a
 * wrap marker (length {@code 0xFFFFFFFF}) and continues at 0.
 *
 * <p>Ordering: the producer writes the record, then publishes its index with a
 * release store; the consumer reads the producer index with an acquire load,
 * then the record, and publishes its own index with a release store after
 * copying the payload out; the producer reads it with an acquire load.
 *
 * <p>Each side keeps its own index in a Java field and never re-reads it from
 * shared memory; only the other side's index is read, and it is checked (the
 * distance must be within [0, capacity]). A record length is read once and
 * checked before any copy. One {@code SpscRing} object may serve as the producer
 * (one thread calling {@link #offer}), the consumer (one thread calling
 * {@link #poll}), or both.
 */
public final class SpscRing implements Ring {
    /** "NXPR" as little-endian bytes 'N' 'X' 'P' 'R'. */
    public static final int MAGIC = 0x5250584E;
    public static final int VERSION = 1;
    public static final int MIN_CAPACITY = 64;
    public static final int MAX_CAPACITY = 1 << 30;
    public static final int WRAP_MARKER = 0xFFFFFFFF;

    static final long OFF_MAGIC = 0;
    static final long OFF_VERSION = 4;
    static final long OFF_CAPACITY = 8;
    static final long OFF_PRODUCER = 64;
    static final long OFF_CONSUMER = 128;
    public static final long DATA_OFFSET = 192;

    private final MemorySegment segment;
    private final int capacity;
    private final long mask;
    /** The producer's own index; written only by the producing thread. */
    private long producer;
    /** The consumer's own index; written only by the consuming thread. */
    private long consumer;

    private SpscRing(MemorySegment segment, int capacity, long producer, long consumer) {
        this.segment = segment;
        this.capacity = capacity;
        this.mask = capacity - 1;
        this.producer = producer;
        this.consumer = consumer;
    }

    /** Bytes a region needs for a ring with {@code capacity} data bytes. */
    public static long requiredSize(int capacity) {
        return DATA_OFFSET + capacity;
    }

    /** Largest message a ring with {@code capacity} data bytes can carry. */
    public static int maxMessage(int capacity) {
        return capacity - 4;
    }

    /** Initializes an empty ring with {@code capacity} data bytes at the start of {@code segment}. */
    public static SpscRing format(MemorySegment segment, int capacity) {
        Shared.checkUsable(segment, "SpscRing.format");
        checkCapacity(capacity, "SpscRing.format");
        if (segment.byteSize() < requiredSize(capacity)) {
            throw new PortalException("SpscRing.format: a ring of capacity " + capacity + " needs "
                    + requiredSize(capacity) + " bytes, the segment has " + segment.byteSize());
        }
        segment.asSlice(0, DATA_OFFSET).fill((byte) 0);
        INT.set(segment, OFF_VERSION, VERSION);
        INT.set(segment, OFF_CAPACITY, capacity);
        LONG.set(segment, OFF_PRODUCER, 0L);
        LONG.set(segment, OFF_CONSUMER, 0L);
        INT.setRelease(segment, OFF_MAGIC, MAGIC); // magic last: a reader sees a complete header
        return new SpscRing(segment, capacity, 0, 0);
    }

    /** Attaches to a ring formatted by someone else, validating its header and indices as untrusted. */
    public static SpscRing attach(MemorySegment segment) {
        Shared.checkUsable(segment, "SpscRing.attach");
        if (segment.byteSize() < DATA_OFFSET) {
            throw new PortalException("SpscRing.attach: segment of " + segment.byteSize()
                    + " bytes is shorter than the " + DATA_OFFSET + "-byte header");
        }
        int magic = (int) INT.getAcquire(segment, OFF_MAGIC);
        if (magic != MAGIC) {
            throw new PortalException(String.format("SpscRing.attach: bad magic 0x%08x (expected 0x%08x); "
                    + "the region is not a formatted ring", magic, MAGIC));
        }
        int version = (int) INT.get(segment, OFF_VERSION);
        if (version != VERSION) {
            throw new PortalException("SpscRing.attach: unsupported version " + Integer.toUnsignedString(version)
                    + " (this bundle speaks version " + VERSION + ")");
        }
        int capacity = (int) INT.get(segment, OFF_CAPACITY);
        checkCapacity(capacity, "SpscRing.attach");
        if (segment.byteSize() < requiredSize(capacity)) {
            throw new PortalException("SpscRing.attach: header claims capacity " + capacity + " ("
                    + requiredSize(capacity) + " bytes with header) but the segment has " + segment.byteSize());
        }
        long producer = (long) LONG.getAcquire(segment, OFF_PRODUCER);
        long consumer = (long) LONG.getAcquire(segment, OFF_CONSUMER);
        if (((producer | consumer) & 7) != 0) {
            throw new PortalException("SpscRing.attach: indices must be multiples of 8 (producer "
                    + Long.toUnsignedString(producer) + ", consumer " + Long.toUnsignedString(consumer) + ")");
        }
        checkDistance(producer, consumer, capacity, "SpscRing.attach");
        return new SpscRing(segment, capacity, producer, consumer);
    }

    private static void checkCapacity(int capacity, String what) {
        if (capacity < MIN_CAPACITY || capacity > MAX_CAPACITY || !Shared.isPowerOfTwo(capacity)) {
            throw new PortalException(what + ": capacity " + Integer.toUnsignedString(capacity)
                    + " must be a power of two in [" + MIN_CAPACITY + ", " + MAX_CAPACITY + "]");
        }
    }

    /** Requires consumer <= producer <= consumer + capacity (free-running, so as an unsigned distance). */
    private static long checkDistance(long producer, long consumer, int capacity, String what) {
        long used = producer - consumer;
        if (Long.compareUnsigned(used, capacity) > 0) {
            throw new PortalException(what + ": corrupt ring indices: producer " + Long.toUnsignedString(producer)
                    + ", consumer " + Long.toUnsignedString(consumer) + ", capacity " + capacity
                    + " (need consumer <= producer <= consumer + capacity)");
        }
        return used;
    }

    private static long recordSize(long length) {
        return (4 + length + 7) & ~7L;
    }

    @Override
    public boolean offer(MemorySegment message) {
        long length = message.byteSize();
        if (length > maxMessage(capacity)) {
            throw new PortalException("offer: a message of " + length + " bytes can never fit a ring of capacity "
                    + capacity + " (largest message " + maxMessage(capacity) + " bytes)");
        }
        long record = recordSize(length);
        long prod = producer;
        long cons = (long) LONG.getAcquire(segment, OFF_CONSUMER);
        long free = capacity - checkDistance(prod, cons, capacity, "offer");
        long pos = prod & mask;
        long tail = capacity - pos;
        if (record > tail) {
            if (free < tail) {
                return false;
            }
            segment.set(ValueLayout.JAVA_INT, DATA_OFFSET + pos, WRAP_MARKER);
            prod += tail;
            free -= tail;
            pos = 0;
            producer = prod;
            LONG.setRelease(segment, OFF_PRODUCER, prod);
        }
        if (record > free) {
            return false;
        }
        segment.set(ValueLayout.JAVA_INT, DATA_OFFSET + pos, (int) length);
        MemorySegment.copy(message, 0, segment, DATA_OFFSET + pos + 4, length);
        prod += record;
        producer = prod;
        LONG.setRelease(segment, OFF_PRODUCER, prod);
        return true;
    }

    @Override
    public int poll(MemorySegment into) {
        long cons = consumer;
        long prod = (long) LONG.getAcquire(segment, OFF_PRODUCER);
        long available = checkDistance(prod, cons, capacity, "poll");
        while (available != 0) {
            long pos = cons & mask;
            long tail = capacity - pos;
            int raw = segment.get(ValueLayout.JAVA_INT, DATA_OFFSET + pos); // read once
            if (raw == WRAP_MARKER) {
                if (tail > available) {
                    throw new PortalException("poll: corrupt ring: wrap marker at " + pos + " skips " + tail
                            + " bytes but only " + available + " are published");
                }
                cons += tail;
                available -= tail;
                consumer = cons;
                LONG.setRelease(segment, OFF_CONSUMER, cons);
                continue;
            }
            long length = Integer.toUnsignedLong(raw);
            long record = recordSize(length);
            if (length > maxMessage(capacity) || record > tail || record > available) {
                throw new PortalException("poll: corrupt record length " + length + " at ring offset " + pos
                        + " (" + tail + " bytes to the end of the ring, " + available + " published)");
            }
            if (length > into.byteSize()) {
                throw new PortalException("poll: the next message has " + length + " bytes but the buffer has "
                        + into.byteSize() + "; the message stays in the ring, poll again with a larger buffer");
            }
            MemorySegment.copy(segment, DATA_OFFSET + pos + 4, into, 0, length);
            cons += record;
            consumer = cons;
            LONG.setRelease(segment, OFF_CONSUMER, cons);
            return (int) length;
        }
        return -1;
    }

    @Override
    public int capacity() {
        return capacity;
    }

    @Override
    public boolean isEmpty() {
        return (long) LONG.getAcquire(segment, OFF_PRODUCER) == (long) LONG.getAcquire(segment, OFF_CONSUMER);
    }
}
