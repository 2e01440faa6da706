package org.nxia.device.virtio.internal.queue;

import static org.nxia.device.virtio.internal.queue.SplitQueue.VIRTQ_DESC_F_INDIRECT;
import static org.nxia.device.virtio.internal.queue.SplitQueue.VIRTQ_DESC_F_NEXT;
import static org.nxia.device.virtio.internal.queue.SplitQueue.VIRTQ_DESC_F_WRITE;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Random;

import org.nxia.vmm.spi.GuestMemory;

/**
 * One randomized hostile-driver case per seed, over one reused guest memory
 * and one reused queue. A case is fully determined by its seed (memory is
 * cleared first), so a failing seed can be stored in the corpus and replayed.
 *
 * <p>The property: every {@link SplitQueue} operation either succeeds with a
 * chain whose every range lies inside guest memory, with at most queue-size
 * buffers, readable before writable; or throws {@link VirtqueueException} and
 * leaves the queue broken. And the converse: a well-formed ring that was not
 * corrupted, in a standard layout, is accepted, chain for chain, in the order it
 * was published (so a queue that refused too much would fail here too).
 * Anything else is a bug; {@link #run} reports it as an {@link AssertionError}
 * naming the seed.
 */
final class QueueFuzzer {

    static final int MEMORY = 32 * 1024;
    static final int MAX_SIZE = 256;
    /** Standard layout for size <= 256: desc at 0 (4 KiB), avail at 0x1000 (518 B), used at 0x1800 (2054 B). */
    static final long DESC = 0;
    static final long AVAIL = 0x1000;
    static final long USED = 0x1800;
    static final long DATA = 0x2100;

    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    private final byte[] backing = new byte[MEMORY];
    /** The test's own (driver-side) view of the memory; the queue sees only {@link #memory}. */
    private final MemorySegment ram = MemorySegment.ofArray(backing);
    private final GuestMemory memory = GuestMemory.of(0, ram);
    private final SplitQueue queue = new SplitQueue(memory, MAX_SIZE);
    private final Random rnd = new Random();
    private final int[] permutation = new int[MAX_SIZE];
    /** What {@link #wellFormedThenCorrupted} published: each chain's head and buffer count, in order. */
    private final int[] publishedHead = new int[4];
    private final int[] publishedCount = new int[4];
    private int published;
    /** Whether the last {@link #fillDescriptors} wrote well-formed chains and corrupted none of them. */
    private boolean uncorrupted;

    /** Counters, for the test's report. */
    long chains;
    long refusedGeometry;
    long brokenQueues;
    /** Chains popped from uncorrupted rings: each was checked against what the driver published. */
    long wellFormedAccepted;

    /** Runs the case for {@code seed}; throws AssertionError naming the seed if the property fails. */
    void run(long seed) {
        try {
            runCase(seed);
        } catch (AssertionError e) {
            throw new AssertionError("seed " + seed + ": " + e.getMessage(), e);
        } catch (VirtqueueException e) {
            throw new AssertionError("seed " + seed + ": VirtqueueException escaped where the case did not expect one", e);
        } catch (RuntimeException e) {
            throw new AssertionError("seed " + seed + ": the queue threw " + e, e);
        }
    }

    private void runCase(long seed) {
        rnd.setSeed(seed);
        Arrays.fill(backing, (byte) 0);
        queue.reset();

        int size = pickSize();
        long desc = DESC;
        long avail = AVAIL;
        long used = USED;
        int layout = rnd.nextInt(20);
        if (layout == 0) {
            desc = address(size);
            avail = address(size);
            used = address(size);
        } else if (layout == 1) {
            desc += rnd.nextInt(16);
            avail += rnd.nextInt(2);
            used += rnd.nextInt(4);
        } else if (layout == 2) {
            // Rings packed against the end of RAM, sometimes one byte too far.
            used = (MEMORY - SplitQueue.usedRingBytes(Math.max(1, Math.min(size, MAX_SIZE))) + rnd.nextInt(2) * 4) & ~3L;
        }
        long features = (long) rnd.nextInt(4) << SplitQueue.VIRTIO_F_INDIRECT_DESC;
        boolean indirect = (features & SplitQueue.F_INDIRECT_DESC) != 0;
        int lastAvail = 0;
        try {
            if (rnd.nextInt(3) == 0) {
                lastAvail = rnd.nextInt(4) == 0 ? 0xffff - rnd.nextInt(4) : rnd.nextInt(0x10000);
                int inFlight = rnd.nextInt(8) == 0 ? rnd.nextInt(0x10000) : rnd.nextInt(Math.max(1, Math.min(size, MAX_SIZE)) + 1);
                long savedFeatures = rnd.nextInt(16) == 0 ? rnd.nextLong() : features;
                queue.restore(new SplitQueueState(size, desc, avail, used, savedFeatures, lastAvail,
                        (lastAvail - inFlight) & 0xffff, false));
            } else {
                queue.configure(size, desc, avail, used);
                queue.negotiate(features);
                queue.activate();
            }
        } catch (VirtqueueException e) {
            refusedGeometry++;
            check(!queue.isActive(), "a refused activation left the queue active");
            return;
        }
        check(isPowerOfTwo(size) && size <= MAX_SIZE, "activated with size " + size);
        check(memory.contains(desc, 16L * size) && memory.contains(avail, 6 + 2L * size) && memory.contains(used, 6 + 8L * size),
                "activated with a ring outside guest memory");

        int pending = fillDescriptors(size, desc, avail, lastAvail, indirect);
        // Layouts 0 and 1 may overlap the rings (a write to one corrupts another); a restored
        // state may carry other features than the ones the chains were written for.
        boolean wellFormed = uncorrupted && layout >= 2 && pending == published && queue.features() == features;
        ram.set(U16, avail + 2, (short) (lastAvail + pending));
        if (rnd.nextInt(4) == 0) {
            ram.set(U16, avail, (short) rnd.nextInt(4));
            ram.set(U16, avail + 4 + 2L * size, (short) rnd.nextInt(0x10000));
        }

        for (int pops = 0; pops < 4; pops++) {
            DescriptorChain chain;
            try {
                chain = queue.next();
            } catch (VirtqueueException e) {
                check(!wellFormed, "refused the well-formed chain " + pops + ": " + e.getMessage());
                brokenQueues++;
                check(queue.isBroken(), "threw without marking the queue broken: " + e.getMessage());
                try {
                    queue.next();
                    check(false, "a broken queue handed out another chain");
                } catch (VirtqueueException expected) {
                    // refused, as it must be
                }
                return;
            }
            if (chain == null) {
                check(!wellFormed || pops == published, "no chain " + pops + " though " + published + " were published");
                return;
            }
            chains++;
            checkChain(chain, size);
            if (wellFormed) {
                check(pops < published, "a chain popped beyond the " + published + " published");
                check(chain.head() == publishedHead[pops] && chain.count() == publishedCount[pops],
                        "chain %d: head %d with %d buffers, published head %d with %d".formatted(
                                pops, chain.head(), chain.count(), publishedHead[pops], publishedCount[pops]));
                wellFormedAccepted++;
            }
            if (rnd.nextBoolean()) {
                queue.pushUsed(chain.head(), Integer.toUnsignedLong(rnd.nextInt()));
                queue.needsNotification();
            }
            if (rnd.nextInt(8) == 0) {
                queue.enableNotification();
            }
        }
    }

    private void checkChain(DescriptorChain chain, int size) {
        check(chain.head() >= 0 && chain.head() < size, "head " + chain.head() + " outside queue of " + size);
        check(chain.count() >= 1 && chain.count() <= size, "chain of " + chain.count() + " buffers in a queue of " + size);
        long readable = 0;
        long writable = 0;
        boolean sawWritable = false;
        for (int i = 0; i < chain.count(); i++) {
            check(memory.contains(chain.address(i), chain.length(i)),
                    "buffer %d [0x%x, +0x%x) outside guest memory".formatted(i, chain.address(i), chain.length(i)));
            check(!sawWritable || chain.isWritable(i), "readable buffer " + i + " after a writable one");
            sawWritable |= chain.isWritable(i);
            if (chain.isWritable(i)) {
                writable += chain.length(i);
            } else {
                readable += chain.length(i);
            }
        }
        check(readable == chain.readableBytes() && writable == chain.writableBytes(), "byte totals disagree with the buffers");
    }

    /** Fills the descriptor table and avail ring in one of three styles; returns how many entries to publish. */
    private int fillDescriptors(int size, long desc, long avail, int lastAvail, boolean indirect) {
        int style = rnd.nextInt(10);
        uncorrupted = false;
        published = 0;
        if (style < 4) {
            return wellFormedThenCorrupted(size, desc, avail, lastAvail, indirect);
        }
        int pending = rnd.nextInt(10) == 0 ? rnd.nextInt(0x10000) : 1 + rnd.nextInt(size);
        for (int slot = 0; slot < Math.min(size, 4); slot++) {
            int head = rnd.nextInt(10) == 0 ? rnd.nextInt(0x10000) : rnd.nextInt(size);
            ram.set(U16, avail + 4 + 2L * ((lastAvail + slot) & (size - 1)), (short) head);
        }
        if (style < 8) {
            // Structured random fields: plausible flags, nexts near the range, addresses near edges.
            for (int i = 0; i < size; i++) {
                randomDescriptor(desc + 16L * i, size);
            }
            for (int t = 0; t < 2; t++) {
                long table = DATA + 16L * rnd.nextInt(64);
                for (int i = 0; i < 1 + rnd.nextInt(8); i++) {
                    randomDescriptor(table + 16L * i, 8);
                }
            }
        } else {
            // Raw noise.
            randomBytes(desc, 16 * size);
            randomBytes(DATA, 1024);
        }
        return pending;
    }

    private int wellFormedThenCorrupted(int size, long desc, long avail, int lastAvail, boolean indirect) {
        for (int i = 0; i < size; i++) {
            permutation[i] = i;
        }
        for (int i = size - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = permutation[i];
            permutation[i] = permutation[j];
            permutation[j] = t;
        }
        int used = 0;
        int chains = 0;
        long data = DATA;
        while (used < size && chains < 4) {
            int head = permutation[used];
            int length = 1 + rnd.nextInt(Math.min(4, size - used));
            int readable = rnd.nextInt(length + 1);
            if (indirect && rnd.nextInt(3) == 0 && data + 16 * 8 < MEMORY) {
                int entries = 1 + rnd.nextInt(Math.min(size, 8));
                int readableEntries = rnd.nextInt(entries + 1);
                for (int e = 0; e < entries; e++) {
                    writeDescriptor(data + 16L * e, DATA + rnd.nextInt(MEMORY - (int) DATA - 256), rnd.nextInt(256),
                            (e >= readableEntries ? VIRTQ_DESC_F_WRITE : 0) | (e + 1 < entries ? VIRTQ_DESC_F_NEXT : 0), e + 1);
                }
                writeDescriptor(desc + 16L * head, data, 16 * entries, VIRTQ_DESC_F_INDIRECT, 0);
                data += 16 * 8;
                used++;
                publishedCount[chains] = entries;
            } else {
                for (int k = 0; k < length; k++) {
                    int index = permutation[used + k];
                    boolean more = k + 1 < length;
                    writeDescriptor(desc + 16L * index, DATA + rnd.nextInt(MEMORY - (int) DATA - 256), rnd.nextInt(256),
                            (k >= readable ? VIRTQ_DESC_F_WRITE : 0) | (more ? VIRTQ_DESC_F_NEXT : 0),
                            more ? permutation[used + k + 1] : 0);
                }
                used += length;
                publishedCount[chains] = length;
            }
            publishedHead[chains] = head;
            ram.set(U16, avail + 4 + 2L * ((lastAvail + chains) & (size - 1)), (short) head);
            chains++;
        }
        published = chains;
        int corruptions = rnd.nextInt(4);
        uncorrupted = corruptions == 0;
        for (int c = 0; c < corruptions; c++) {
            long where = switch (rnd.nextInt(3)) {
                case 0 -> desc + rnd.nextInt(16 * size);
                case 1 -> avail + rnd.nextInt((int) SplitQueue.availRingBytes(size));
                default -> DATA + rnd.nextInt((int) (data - DATA) + 16);
            };
            if (rnd.nextBoolean()) {
                ram.set(ValueLayout.JAVA_BYTE, where, (byte) rnd.nextInt());
            } else {
                ram.set(ValueLayout.JAVA_BYTE, where, (byte) (ram.get(ValueLayout.JAVA_BYTE, where) ^ (1 << rnd.nextInt(8))));
            }
        }
        return rnd.nextInt(16) == 0 ? chains + rnd.nextInt(3) : chains;
    }

    private void randomDescriptor(long at, int tableSize) {
        int flags = rnd.nextInt(16) == 0 ? rnd.nextInt(0x10000) : rnd.nextInt(8);
        int next = rnd.nextInt(16) == 0 ? rnd.nextInt(0x10000) : rnd.nextInt(tableSize + 1);
        writeDescriptor(at, address(tableSize), length(tableSize), flags, next);
    }

    private long address(int size) {
        return switch (rnd.nextInt(10)) {
            case 0, 1, 2 -> rnd.nextInt(MEMORY);
            case 3 -> MEMORY - rnd.nextInt(64);
            case 4 -> rnd.nextLong();
            case 5 -> -1L - rnd.nextInt(64);
            case 6 -> Long.MAX_VALUE - rnd.nextInt(64);
            case 7 -> Long.MIN_VALUE + rnd.nextInt(64);
            default -> DATA + 16L * rnd.nextInt(64);
        };
    }

    private int length(int size) {
        return switch (rnd.nextInt(8)) {
            case 0, 1, 2 -> rnd.nextInt(256);
            case 3 -> rnd.nextInt(MEMORY + 1);
            case 4 -> -1 - rnd.nextInt(64);
            case 5 -> rnd.nextInt();
            default -> 16 * rnd.nextInt(Math.max(size, 8) + 2) + (rnd.nextInt(8) == 0 ? rnd.nextInt(16) : 0);
        };
    }

    private int pickSize() {
        return switch (rnd.nextInt(40)) {
            case 0 -> rnd.nextInt(600) - 50;
            case 1 -> 1 << (9 + rnd.nextInt(8));
            default -> 1 << rnd.nextInt(9);
        };
    }

    private void randomBytes(long at, int bytes) {
        for (int i = 0; i + 8 <= bytes; i += 8) {
            ram.set(U64, at + i, rnd.nextLong());
        }
    }

    private void writeDescriptor(long at, long address, int length, int flags, int next) {
        ram.set(U64, at, address);
        ram.set(U32, at + 8, length);
        ram.set(U16, at + 12, (short) flags);
        ram.set(U16, at + 14, (short) next);
    }

    private static boolean isPowerOfTwo(int n) {
        return n > 0 && Integer.bitCount(n) == 1;
    }

    private static void check(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
    }
}
