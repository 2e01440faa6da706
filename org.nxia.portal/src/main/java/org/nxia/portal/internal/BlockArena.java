package org.nxia.portal.internal;

import static org.nxia.portal.internal.Shared.INT;
import static org.nxia.portal.internal.Shared.LONG;

import java.lang.foreign.MemorySegment;

import org.nxia.portal.api.PortalArena;
import org.nxia.portal.api.PortalException;
import org.nxia.portal.api.Ref;

/**
 * A fixed-block-size arena over any 8-byte aligned {@link MemorySegment}; the
 * byte layout is specified in {@code docs/portal-abi.md}.
 *
 * <p>Layout: a 64-byte header (magic, version, block size, block count), a
 * per-block u32 generation table at offset 64, an allocation bitmap of u64 words
 * at the next 64-byte boundary, and the data blocks at the 64-byte boundary after
 * that.
 *
 * <p>Allocation is lock-free: a block is taken by a {@code compareAndSet} that
 * sets its bit in the bitmap, so a holder that dies cannot wedge the others.
 * Generation rule: the allocation state is the bitmap bit alone; the generation
 * counts frees. {@link #free} first advances the block's generation by one
 * (compare-and-set from the reference's generation, so only one of two racing
 * frees wins), then clears the bit (a volatile, hence release, compare-and-set).
 * A reference is valid while the bit is set and its generation equals the
 * table's. The generation wraps modulo 2^32.
 *
 * <p>Limit: one allocation is one block; a length above the block size is
 * refused.
 *
 * <p>The geometry (block size, block count, offsets) is read once, validated, and
 * kept in final fields; the header is never re-read, so a peer that rewrites it
 * later cannot move the host's bounds. A hostile peer that rewrites the bitmap
 * or generation table can leak or alias blocks inside the data area, but never
 * cause an access outside it.
 */
public final class BlockArena implements PortalArena {
    /** "NXPA" as little-endian bytes 'N' 'X' 'P' 'A'. */
    public static final int MAGIC = 0x4150584E;
    public static final int VERSION = 1;
    public static final int HEADER_SIZE = 64;
    public static final int MIN_BLOCK_SIZE = 64;
    public static final int MAX_BLOCK_SIZE = 1 << 30;
    public static final long MAX_BLOCK_COUNT = Integer.MAX_VALUE;

    static final long OFF_MAGIC = 0;
    static final long OFF_VERSION = 4;
    static final long OFF_BLOCK_SIZE = 8;
    static final long OFF_BLOCK_COUNT = 12;
    static final long OFF_GENERATIONS = HEADER_SIZE;

    private final MemorySegment segment;
    private final int blockSize;
    private final int blockShift;
    private final int blockCount;
    private final int words;
    private final long bitmapOffset;
    private final long dataOffset;
    private final long dataEnd;
    /** Word to start the next search at; a racy hint, never trusted for correctness. */
    private int hint;

    private BlockArena(MemorySegment segment, int blockSize, int blockCount) {
        this.segment = segment;
        this.blockSize = blockSize;
        this.blockShift = Integer.numberOfTrailingZeros(blockSize);
        this.blockCount = blockCount;
        this.words = wordCount(blockCount);
        this.bitmapOffset = bitmapOffset(blockCount);
        this.dataOffset = dataOffset(blockCount);
        this.dataEnd = dataOffset + ((long) blockCount << blockShift);
    }

    static int wordCount(long blockCount) {
        return (int) ((blockCount + 63) >>> 6);
    }

    static long bitmapOffset(long blockCount) {
        return Shared.alignUp(OFF_GENERATIONS + 4 * blockCount, 64);
    }

    static long dataOffset(long blockCount) {
        return Shared.alignUp(bitmapOffset(blockCount) + 8L * wordCount(blockCount), 64);
    }

    /** Bytes a region needs for {@code blockCount} blocks of {@code blockSize}. */
    public static long requiredSize(int blockSize, long blockCount) {
        return dataOffset(blockCount) + blockCount * blockSize;
    }

    /**
     * Initializes an arena over the whole of {@code segment} with as many blocks
     * of {@code blockSize} as fit. Other parties must not use the segment during
     * formatting.
     */
    public static BlockArena format(MemorySegment segment, int blockSize) {
        Shared.checkUsable(segment, "BlockArena.format");
        checkBlockSize(blockSize, "BlockArena.format");
        long length = segment.byteSize();
        long lo = 0;
        long hi = Math.min(length / blockSize, MAX_BLOCK_COUNT);
        while (lo < hi) { // largest n with requiredSize(n) <= length
            long mid = (lo + hi + 1) >>> 1;
            if (requiredSize(blockSize, mid) <= length) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        if (lo == 0) {
            throw new PortalException("BlockArena.format: a segment of " + length + " bytes cannot hold one block of "
                    + blockSize + " bytes plus metadata (needs " + requiredSize(blockSize, 1) + ")");
        }
        int count = (int) lo;
        BlockArena arena = new BlockArena(segment, blockSize, count);
        segment.asSlice(0, arena.dataOffset).fill((byte) 0);
        // Bits past the last block are permanently "allocated".
        int spare = count & 63;
        if (spare != 0) {
            segment.set(java.lang.foreign.ValueLayout.JAVA_LONG, arena.bitmapOffset + 8L * (arena.words - 1),
                    -1L << spare);
        }
        INT.set(segment, OFF_VERSION, VERSION);
        INT.set(segment, OFF_BLOCK_SIZE, blockSize);
        INT.set(segment, OFF_BLOCK_COUNT, count);
        INT.setRelease(segment, OFF_MAGIC, MAGIC); // magic last: a reader sees a complete header
        return arena;
    }

    /** Attaches to an arena formatted by someone else, validating its header as untrusted. */
    public static BlockArena attach(MemorySegment segment) {
        Shared.checkUsable(segment, "BlockArena.attach");
        long length = segment.byteSize();
        if (length < HEADER_SIZE) {
            throw new PortalException("BlockArena.attach: segment of " + length + " bytes is shorter than the "
                    + HEADER_SIZE + "-byte header");
        }
        int magic = (int) INT.getAcquire(segment, OFF_MAGIC);
        if (magic != MAGIC) {
            throw new PortalException(String.format("BlockArena.attach: bad magic 0x%08x (expected 0x%08x); "
                    + "the region is not a formatted arena", magic, MAGIC));
        }
        int version = (int) INT.get(segment, OFF_VERSION);
        if (version != VERSION) {
            throw new PortalException("BlockArena.attach: unsupported version " + Integer.toUnsignedString(version)
                    + " (this bundle speaks version " + VERSION + ")");
        }
        int blockSize = (int) INT.get(segment, OFF_BLOCK_SIZE);
        checkBlockSize(blockSize, "BlockArena.attach");
        long count = Integer.toUnsignedLong((int) INT.get(segment, OFF_BLOCK_COUNT));
        if (count == 0 || count > MAX_BLOCK_COUNT) {
            throw new PortalException("BlockArena.attach: block count " + count + " out of range [1, "
                    + MAX_BLOCK_COUNT + "]");
        }
        long needed = requiredSize(blockSize, count); // < 2^62: no overflow
        if (needed > length) {
            throw new PortalException("BlockArena.attach: header claims " + count + " blocks of " + blockSize
                    + " bytes (" + needed + " bytes with metadata) but the segment has " + length + " bytes");
        }
        return new BlockArena(segment, blockSize, (int) count);
    }

    private static void checkBlockSize(int blockSize, String what) {
        if (blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE || !Shared.isPowerOfTwo(blockSize)) {
            throw new PortalException(what + ": block size " + Integer.toUnsignedString(blockSize)
                    + " must be a power of two in [" + MIN_BLOCK_SIZE + ", " + MAX_BLOCK_SIZE + "]");
        }
    }

    @Override
    public Ref allocate(long length) {
        if (length <= 0) {
            throw new PortalException("allocate: length must be positive, was " + length);
        }
        if (length > blockSize) {
            throw new PortalException("allocate: length " + length + " exceeds the block size " + blockSize
                    + "; this arena hands out one block per allocation (format one with larger blocks)");
        }
        int start = hint;
        if (start < 0 || start >= words) {
            start = 0;
        }
        for (int n = 0; n < words; n++) {
            int word = start + n;
            if (word >= words) {
                word -= words;
            }
            long at = bitmapOffset + 8L * word;
            long valid = validMask(word);
            long w = (long) LONG.getVolatile(segment, at);
            long free;
            while ((free = ~w & valid) != 0) {
                long bit = Long.lowestOneBit(free);
                long witness = (long) LONG.compareAndExchange(segment, at, w, w | bit);
                if (witness == w) {
                    hint = word;
                    long index = ((long) word << 6) + Long.numberOfTrailingZeros(bit);
                    int generation = (int) INT.getAcquire(segment, OFF_GENERATIONS + 4 * index);
                    return new Ref(dataOffset + (index << blockShift), length, generation);
                }
                w = witness;
            }
        }
        throw new PortalException("allocate: arena full, all " + blockCount + " blocks of " + blockSize
                + " bytes are allocated; free some or use a larger region");
    }

    private long validMask(int word) {
        int spare = blockCount & 63;
        return (word == words - 1 && spare != 0) ? ~(-1L << spare) : -1L;
    }

    @Override
    public void free(Ref ref) {
        long index = check(ref, "free");
        long genAt = OFF_GENERATIONS + 4 * index;
        int generation = ref.generation();
        if (!INT.compareAndSet(segment, genAt, generation, generation + 1)) {
            throw new PortalException("free: stale reference to block " + index + " (generation " + generation
                    + ", now " + (int) INT.getVolatile(segment, genAt) + "); it was freed concurrently");
        }
        long at = bitmapOffset + 8L * (index >>> 6);
        long bit = 1L << (index & 63);
        long w = (long) LONG.getVolatile(segment, at);
        while (true) {
            if ((w & bit) == 0) {
                throw new PortalException("free: block " + index + " was cleared in the bitmap by someone else "
                        + "while being freed; the shared arena is corrupt");
            }
            long witness = (long) LONG.compareAndExchange(segment, at, w, w & ~bit);
            if (witness == w) {
                return;
            }
            w = witness;
        }
    }

    @Override
    public MemorySegment deref(Ref ref) {
        check(ref, "deref");
        return segment.asSlice(ref.offset(), ref.length());
    }

    /** Validates {@code ref} against the bounds, the bitmap and the generation table; returns the block index. */
    private long check(Ref ref, String op) {
        if (ref == null) {
            throw new PortalException(op + ": reference is null");
        }
        long offset = ref.offset();
        long length = ref.length();
        if (offset < dataOffset || offset >= dataEnd) {
            throw new PortalException(op + ": offset " + offset + " is outside the arena's data area ["
                    + dataOffset + ", " + dataEnd + ")");
        }
        long relative = offset - dataOffset;
        if ((relative & (blockSize - 1)) != 0) {
            throw new PortalException(op + ": offset " + offset + " is not at a block boundary (block size "
                    + blockSize + ", data at " + dataOffset + ")");
        }
        if (length <= 0 || length > blockSize) {
            throw new PortalException(op + ": length " + length + " out of range [1, " + blockSize + "]");
        }
        long index = relative >>> blockShift;
        long w = (long) LONG.getAcquire(segment, bitmapOffset + 8L * (index >>> 6));
        if ((w & (1L << (index & 63))) == 0) {
            throw new PortalException(op + ": block " + index + " is not allocated (stale reference or double free)");
        }
        int generation = (int) INT.getAcquire(segment, OFF_GENERATIONS + 4 * index);
        if (generation != ref.generation()) {
            throw new PortalException(op + ": stale or forged reference to block " + index + ": generation "
                    + ref.generation() + ", block is at generation " + generation);
        }
        return index;
    }

    @Override
    public long capacity() {
        return (long) blockCount << blockShift;
    }

    public int blockSize() {
        return blockSize;
    }

    public int blockCount() {
        return blockCount;
    }

    /** Offset of the first data block from the start of the segment. */
    public long dataOffset() {
        return dataOffset;
    }
}
