package org.nxia.device.virtio.internal.queue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.Objects;

import org.nxia.vmm.spi.GuestMemory;

/**
 * The device side of one virtio 1.x split virtqueue (spec section 2.7).
 *
 * <p>Everything in the rings is written by the driver, and the driver is
 * untrusted: a buggy or malicious guest can put any bytes there, and can change
 * them while the device reads. So the geometry is validated once, at
 * {@link #activate()} (size, alignment, every ring wholly inside guest memory),
 * and each descriptor is validated as it is read, from a single read of its
 * fields (no re-reading a value after checking it). Any violation throws
 * {@link VirtqueueException} and leaves the queue broken: it refuses further work
 * until {@link #reset()}, and the device is expected to set
 * {@code DEVICE_NEEDS_RESET}. Nothing a driver writes can make the device read
 * or write outside guest memory, spin forever, or throw anything else.
 *
 * <p>Lifecycle: {@link #configure}, {@link #negotiate}, {@link #activate()};
 * then {@link #next()} / {@link #pushUsed} / {@link #needsNotification()} from
 * the one thread that services the queue. Not thread-safe.
 *
 * <p>Memory ordering: the driver runs on other CPUs. Ring reads and writes are
 * plain accesses ordered with {@link VarHandle} fences where the spec requires a
 * barrier (the same points as Linux's vhost: read barrier after the avail index,
 * write barrier before the used index, full barrier before reading the
 * driver's notification-suppression fields).
 */
public final class SplitQueue {

    /** Largest queue size the split layout allows (spec 2.7: "Queue Size ... maximum 32768"). */
    public static final int MAX_SIZE = 32768;

    /** VIRTIO_F_INDIRECT_DESC: descriptors may point at an indirect descriptor table. */
    public static final int VIRTIO_F_INDIRECT_DESC = 28;
    /** VIRTIO_F_EVENT_IDX: used_event / avail_event replace the flags-based suppression. */
    public static final int VIRTIO_F_EVENT_IDX = 29;
    /** The feature bit of {@link #VIRTIO_F_INDIRECT_DESC}. */
    public static final long F_INDIRECT_DESC = 1L << VIRTIO_F_INDIRECT_DESC;
    /** The feature bit of {@link #VIRTIO_F_EVENT_IDX}. */
    public static final long F_EVENT_IDX = 1L << VIRTIO_F_EVENT_IDX;
    /** The ring features this queue implements; {@link #negotiate} keeps only these. */
    public static final long QUEUE_FEATURES = F_INDIRECT_DESC | F_EVENT_IDX;

    /** Descriptor flag: the chain continues at {@code next}. */
    public static final int VIRTQ_DESC_F_NEXT = 1;
    /** Descriptor flag: device-writable buffer (otherwise device-readable). */
    public static final int VIRTQ_DESC_F_WRITE = 2;
    /** Descriptor flag: the buffer is a table of descriptors. */
    public static final int VIRTQ_DESC_F_INDIRECT = 4;
    /** avail.flags: the driver asks not to be interrupted (without EVENT_IDX). */
    public static final int VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
    /** used.flags: the device asks not to be notified (without EVENT_IDX). */
    public static final int VIRTQ_USED_F_NO_NOTIFY = 1;

    /** Bytes per descriptor, and the descriptor table's alignment. */
    public static final int DESCRIPTOR_SIZE = 16;
    public static final int DESCRIPTOR_TABLE_ALIGN = 16;
    public static final int AVAIL_RING_ALIGN = 2;
    public static final int USED_RING_ALIGN = 4;

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;

    private final GuestMemory memory;
    private final int maxSize;
    /** All of guest memory, for indirect tables; every access is first checked with {@link GuestMemory#contains}. */
    private final MemorySegment ram;
    /** Reused for every chain: the hot path allocates nothing. */
    private final DescriptorChain chain;

    // Configuration, as the driver wrote it; validated only by activate().
    private int size;
    private long descriptorTable;
    private long availRing;
    private long usedRing;
    private long features;

    // Runtime state.
    private boolean active;
    private boolean broken;
    private MemorySegment descSegment;
    private MemorySegment availSegment;
    private MemorySegment usedSegment;
    private int lastAvailIdx;
    private int usedIdx;
    /** The used index at the last {@link #needsNotification()}; -1: none yet, so the next one notifies. */
    private int signalledUsedIdx = -1;

    /**
     * A queue over {@code memory} whose size may be configured up to {@code maxSize}
     * (the device's {@code queue_size} register at reset).
     */
    public SplitQueue(GuestMemory memory, int maxSize) {
        this.memory = Objects.requireNonNull(memory, "memory");
        if (!isValidSize(maxSize)) {
            throw new IllegalArgumentException("maximum queue size " + maxSize + " is not a power of two in 1.." + MAX_SIZE);
        }
        this.maxSize = maxSize;
        this.ram = memory.slice(memory.base(), memory.size());
        this.chain = new DescriptorChain(maxSize);
        this.size = maxSize;
    }

    /** The largest size {@link #configure} accepts. */
    public int maxSize() {
        return maxSize;
    }

    /**
     * Records the driver's queue configuration registers. Nothing is checked
     * here: the driver may write them in any order, and {@link #activate()}
     * validates the whole once.
     */
    public void configure(int size, long descriptorTable, long availRing, long usedRing) {
        requireInactive("configure");
        this.size = size;
        this.descriptorTable = descriptorTable;
        this.availRing = availRing;
        this.usedRing = usedRing;
    }

    /** Sets the negotiated features; only {@link #QUEUE_FEATURES} bits matter to the queue and are kept. */
    public void negotiate(long driverFeatures) {
        requireInactive("negotiate");
        this.features = driverFeatures & QUEUE_FEATURES;
    }

    /**
     * Validates the geometry and starts the queue (the driver wrote
     * {@code queue_enable = 1}).
     *
     * @throws VirtqueueException naming the problem: size not a power of two in
     *         1..maxSize, a misaligned ring, a ring not wholly inside guest memory
     */
    public void activate() {
        requireInactive("activate");
        validateGeometry(size, descriptorTable, availRing, usedRing);
        start(0, 0, false);
    }

    /** Back to the reset state (device reset): inactive, not broken, indices zero. */
    public void reset() {
        active = false;
        broken = false;
        size = maxSize;
        descriptorTable = 0;
        availRing = 0;
        usedRing = 0;
        features = 0;
        lastAvailIdx = 0;
        usedIdx = 0;
        signalledUsedIdx = -1;
        descSegment = null;
        availSegment = null;
        usedSegment = null;
        chain.reset(0);
    }

    public boolean isActive() {
        return active;
    }

    /**
     * What the rings hold in guest memory, for a state dump (empty while inactive): the driver's
     * {@code avail.idx} and {@code used_event}, and the device side's {@code used.idx} and
     * {@code avail_event}. A driver that waits with {@code avail.idx} past what the device took
     * and {@code avail_event} behind it was told not to kick.
     */
    public String rings() {
        if (!active) {
            return "";
        }
        return "avail.idx=%d used_event=%d used.idx=%d avail_event=%d".formatted(Short.toUnsignedInt(availSegment.get(U16, 2)),
                Short.toUnsignedInt(availSegment.get(U16, 4 + 2L * size)), Short.toUnsignedInt(usedSegment.get(U16, 2)),
                Short.toUnsignedInt(usedSegment.get(U16, 4 + 8L * size)));
    }

    /** Whether a driver error stopped the queue; it refuses work until {@link #reset()}. */
    public boolean isBroken() {
        return broken;
    }

    public int size() {
        return size;
    }

    public long features() {
        return features;
    }

    /**
     * The next available descriptor chain, or {@code null} when the driver has
     * made none available. The returned cursor is reused by the next call.
     *
     * @throws VirtqueueException if the driver broke the protocol; the queue is then broken
     * @throws IllegalStateException if the queue is not active
     */
    public DescriptorChain next() {
        requireWorking();
        int availIdx = Short.toUnsignedInt(availSegment.get(U16, 2));
        // Acquire: the ring entry and the descriptors must be read after the index
        // that published them (the driver wrote them before a write barrier).
        VarHandle.acquireFence();
        int pending = (availIdx - lastAvailIdx) & 0xffff;
        if (pending == 0) {
            return null;
        }
        // WHY: a driver can only have `size` chains outstanding; a larger jump
        // means a corrupt or hostile index, and trusting it would make the device
        // consume ring slots the driver never filled.
        if (pending > size) {
            throw fail("available index %d is %d entries past the last seen %d, more than the queue size %d"
                    .formatted(availIdx, pending, lastAvailIdx, size));
        }
        int head = Short.toUnsignedInt(availSegment.get(U16, 4 + 2L * (lastAvailIdx & (size - 1))));
        if (head >= size) {
            throw fail("available ring entry %d names head descriptor %d, outside the queue of %d"
                    .formatted(lastAvailIdx, head, size));
        }
        walk(head);
        lastAvailIdx = (lastAvailIdx + 1) & 0xffff;
        return chain;
    }

    /**
     * Gives back the last {@code count} chains {@link #next()} returned and no
     * {@link #pushUsed} answered: the next calls return them again. For a device
     * that needs several chains at once (virtio-net's mergeable receive
     * buffers) and found too few; the driver sees nothing.
     *
     * @throws IllegalArgumentException if {@code count} is negative or more than the chains in flight (a device bug)
     */
    public void unpop(int count) {
        requireWorking();
        if (count < 0 || count > ((lastAvailIdx - usedIdx) & 0xffff)) {
            throw new IllegalArgumentException("cannot give back " + count + " chains; "
                    + ((lastAvailIdx - usedIdx) & 0xffff) + " are in flight");
        }
        lastAvailIdx = (lastAvailIdx - count) & 0xffff;
    }

    /**
     * Returns a chain to the driver: writes the used element, then bumps the used index.
     *
     * @param head          the head index from {@link DescriptorChain#head()}
     * @param writtenLength bytes the device wrote into the chain's writable buffers (a u32)
     * @throws IllegalArgumentException if {@code head} or {@code writtenLength} is out of range (a device bug)
     * @throws IllegalStateException    if no chain is in flight (a device bug), or the queue is inactive or broken
     */
    public void pushUsed(int head, long writtenLength) {
        requireWorking();
        if (head < 0 || head >= size) {
            throw new IllegalArgumentException("head " + head + " is outside the queue of " + size);
        }
        if (writtenLength < 0 || writtenLength > 0xffff_ffffL) {
            throw new IllegalArgumentException("written length " + writtenLength + " is not a u32");
        }
        if (((lastAvailIdx - usedIdx) & 0xffff) == 0) {
            throw new IllegalStateException("no chain is in flight: every popped chain was already returned");
        }
        long element = 4 + 8L * (usedIdx & (size - 1));
        usedSegment.set(U32, element, head);
        usedSegment.set(U32, element + 4, (int) writtenLength);
        // Release: the driver must see the element before the index that publishes it.
        VarHandle.releaseFence();
        usedIdx = (usedIdx + 1) & 0xffff;
        usedSegment.set(U16, 2, (short) usedIdx);
    }

    /**
     * Whether the driver wants an interrupt for the used entries pushed since the
     * last call. With EVENT_IDX: {@code vring_need_event(used_event, usedIdx, previous)},
     * with {@code used_event} read from the tail of the available ring. Without:
     * unless the driver set {@link #VIRTQ_AVAIL_F_NO_INTERRUPT}. Never when nothing
     * was pushed since the last call. The driver's fields are only hints: any
     * value is safe here.
     */
    public boolean needsNotification() {
        requireWorking();
        // Full barrier: our used-index store must be visible before we read the
        // driver's suppression field, or each side can miss the other's update
        // and the driver waits forever for an interrupt.
        VarHandle.fullFence();
        int previous = signalledUsedIdx;
        signalledUsedIdx = usedIdx;
        if (previous == usedIdx) {
            return false;
        }
        if (eventIdx()) {
            if (previous < 0) {
                return true;
            }
            int usedEvent = Short.toUnsignedInt(availSegment.get(U16, 4 + 2L * size));
            return ((usedIdx - usedEvent - 1) & 0xffff) < ((usedIdx - previous) & 0xffff);
        }
        int flags = Short.toUnsignedInt(availSegment.get(U16, 0));
        return (flags & VIRTQ_AVAIL_F_NO_INTERRUPT) == 0;
    }

    /**
     * Asks the driver to notify (kick) when it makes more chains available: with
     * EVENT_IDX writes {@code avail_event = lastAvailIdx}, otherwise clears
     * {@link #VIRTQ_USED_F_NO_NOTIFY}. Returns whether chains are already
     * available, which the device must then process: the driver may have added
     * them before it saw the request, and would not kick for them.
     */
    public boolean enableNotification() {
        requireWorking();
        if (eventIdx()) {
            usedSegment.set(U16, 4 + 8L * size, (short) lastAvailIdx);
        } else {
            usedSegment.set(U16, 0, (short) 0);
        }
        VarHandle.fullFence();
        return Short.toUnsignedInt(availSegment.get(U16, 2)) != lastAvailIdx;
    }

    /** The available index up to which {@link #next()} has taken chains. */
    public int lastAvailIdx() {
        return lastAvailIdx;
    }

    /**
     * Whether the driver made chains available that {@link #next()} has not
     * taken: for a device that learns of a kick without the queue's index
     * (a doorbell shared by every queue).
     */
    public boolean hasAvailable() {
        requireWorking();
        return Short.toUnsignedInt(availSegment.get(U16, 2)) != lastAvailIdx;
    }

    /**
     * Asks the driver to notify when it next makes a chain available, whatever it made available
     * before: with EVENT_IDX avail_event is set to the driver's current index (not to the device's
     * next one, which chains already posted may have passed), without it the no-notify flag is cleared.
     */
    public void notifyOnNextAvailable() {
        requireWorking();
        if (eventIdx()) {
            usedSegment.set(U16, 4 + 8L * size, availSegment.get(U16, 2));
        } else {
            usedSegment.set(U16, 0, (short) 0);
        }
        VarHandle.fullFence();
    }

    /** Asks the driver not to notify (only without EVENT_IDX; with it, avail_event already says when). */
    public void disableNotification() {
        requireWorking();
        if (!eventIdx()) {
            usedSegment.set(U16, 0, (short) VIRTQ_USED_F_NO_NOTIFY);
        }
    }

    /**
     * The state to save.
     *
     * @throws IllegalStateException if the queue is not active (devices save only enabled queues)
     */
    public SplitQueueState state() {
        if (!active) {
            throw new IllegalStateException("queue is not active; there is no state to save");
        }
        return new SplitQueueState(size, descriptorTable, availRing, usedRing, features, lastAvailIdx, usedIdx, broken);
    }

    /**
     * Makes this queue active with a saved state. The state is validated like
     * anything else the guest controls: the geometry as in {@link #activate()},
     * features limited to {@link #QUEUE_FEATURES}, 16-bit indices, and no more
     * chains in flight than the queue holds. A refused state leaves this queue
     * unchanged.
     *
     * @throws VirtqueueException naming the first problem found
     */
    public void restore(SplitQueueState state) {
        Objects.requireNonNull(state, "state");
        validateGeometry(state.size(), state.descriptorTable(), state.availRing(), state.usedRing());
        if ((state.features() & ~QUEUE_FEATURES) != 0) {
            throw new VirtqueueException("saved features 0x%x name bits this queue does not implement (only 0x%x)"
                    .formatted(state.features(), QUEUE_FEATURES));
        }
        if (state.lastAvailIdx() < 0 || state.lastAvailIdx() > 0xffff) {
            throw new VirtqueueException("saved last available index " + state.lastAvailIdx() + " is not a u16");
        }
        if (state.usedIdx() < 0 || state.usedIdx() > 0xffff) {
            throw new VirtqueueException("saved used index " + state.usedIdx() + " is not a u16");
        }
        int inFlight = (state.lastAvailIdx() - state.usedIdx()) & 0xffff;
        if (inFlight > state.size()) {
            throw new VirtqueueException("saved state has %d chains in flight (last available %d, used %d), more than the queue size %d"
                    .formatted(inFlight, state.lastAvailIdx(), state.usedIdx(), state.size()));
        }
        size = state.size();
        descriptorTable = state.descriptorTable();
        availRing = state.availRing();
        usedRing = state.usedRing();
        features = state.features();
        start(state.lastAvailIdx(), state.usedIdx(), state.broken());
    }

    // ---------------------------------------------------------------- internals

    private boolean eventIdx() {
        return (features & F_EVENT_IDX) != 0;
    }

    private boolean indirect() {
        return (features & F_INDIRECT_DESC) != 0;
    }

    private void start(int lastAvail, int used, boolean isBroken) {
        descSegment = memory.slice(descriptorTable, descriptorTableBytes(size));
        availSegment = memory.slice(availRing, availRingBytes(size));
        usedSegment = memory.slice(usedRing, usedRingBytes(size));
        lastAvailIdx = lastAvail;
        usedIdx = used;
        signalledUsedIdx = -1;
        broken = isBroken;
        active = true;
    }

    /** Spec 2.7 "Virtqueue Part" sizes; {@code size <= 32768}, so none overflows. */
    static long descriptorTableBytes(int size) {
        return (long) DESCRIPTOR_SIZE * size;
    }

    /** flags, idx, ring[size], used_event: the spec sizes the ring with used_event whether or not EVENT_IDX is negotiated. */
    static long availRingBytes(int size) {
        return 6 + 2L * size;
    }

    /** flags, idx, ring[size] of {id, len}, avail_event. */
    static long usedRingBytes(int size) {
        return 6 + 8L * size;
    }

    private static boolean isValidSize(int size) {
        return size >= 1 && size <= MAX_SIZE && Integer.bitCount(size) == 1;
    }

    /**
     * WHY: the rings' addresses and size come from driver-written registers. A
     * ring that reaches past the end of RAM would let later ring accesses fail
     * (or, without the GuestMemory checks, touch host memory); validating here,
     * once, lets the hot path index the ring slices freely. Overlapping rings
     * are not refused: they can only corrupt the guest's own buffers.
     */
    private void validateGeometry(int qsize, long desc, long avail, long used) {
        if (!isValidSize(qsize)) {
            throw new VirtqueueException("queue size " + qsize + " is not a power of two in 1.." + MAX_SIZE);
        }
        if (qsize > maxSize) {
            throw new VirtqueueException("queue size " + qsize + " exceeds the device's maximum " + maxSize);
        }
        checkRing("descriptor table", desc, DESCRIPTOR_TABLE_ALIGN, descriptorTableBytes(qsize));
        checkRing("available ring", avail, AVAIL_RING_ALIGN, availRingBytes(qsize));
        checkRing("used ring", used, USED_RING_ALIGN, usedRingBytes(qsize));
    }

    private void checkRing(String what, long address, int alignment, long bytes) {
        if ((address & (alignment - 1)) != 0) {
            throw new VirtqueueException("%s at 0x%x is not %d-byte aligned".formatted(what, address, alignment));
        }
        if (!memory.contains(address, bytes)) {
            throw new VirtqueueException("%s [0x%x, +0x%x) is not wholly inside guest memory [0x%x, 0x%x)"
                    .formatted(what, address, bytes, memory.base(), memory.base() + memory.size()));
        }
    }

    /**
     * Walks the chain from {@code head} in the descriptor table into the cursor.
     * WHY every check: each field is driver-written. {@code next} can point
     * anywhere or form a cycle, so indices are bounds-checked and the walk is
     * capped at the queue size (a loop ends as an error, not a hang); buffer
     * ranges are checked so the device never touches memory outside the guest.
     */
    private void walk(int head) {
        chain.reset(head);
        boolean sawWritable = false;
        int index = head;
        for (int hops = 1; ; hops++) {
            if (hops > size) {
                throw fail("descriptor chain from head %d is longer than the queue size %d (a loop?)".formatted(head, size));
            }
            long offset = (long) DESCRIPTOR_SIZE * index;
            // Each field is read once; checks and use see the same value even if the driver rewrites it meanwhile.
            long address = descSegment.get(U64, offset);
            int length = descSegment.get(U32, offset + 8);
            int flags = Short.toUnsignedInt(descSegment.get(U16, offset + 12));
            int nextIndex = Short.toUnsignedInt(descSegment.get(U16, offset + 14));
            if ((flags & VIRTQ_DESC_F_INDIRECT) != 0) {
                if (!indirect()) {
                    throw fail("descriptor %d is INDIRECT but VIRTIO_F_INDIRECT_DESC was not negotiated".formatted(index));
                }
                // Spec 2.7.5.3.1: a driver MUST NOT set both INDIRECT and NEXT; the table ends the chain.
                if ((flags & VIRTQ_DESC_F_NEXT) != 0) {
                    throw fail("descriptor %d sets both INDIRECT and NEXT".formatted(index));
                }
                walkIndirect(index, address, length, sawWritable);
                return;
            }
            sawWritable = append(index, -1, address, length, flags, sawWritable);
            if ((flags & VIRTQ_DESC_F_NEXT) == 0) {
                return;
            }
            if (nextIndex >= size) {
                throw fail("descriptor %d's next index %d is outside the queue of %d".formatted(index, nextIndex, size));
            }
            index = nextIndex;
        }
    }

    /** Follows the indirect table the descriptor {@code index} points at. The WRITE flag on that descriptor is ignored (spec 2.7.5.3.2). */
    private void walkIndirect(int index, long tableAddress, int tableLength, boolean sawWritable) {
        long tableBytes = Integer.toUnsignedLong(tableLength);
        if (tableBytes == 0 || tableBytes % DESCRIPTOR_SIZE != 0) {
            throw fail("descriptor %d's indirect table length %d is not a non-zero multiple of %d"
                    .formatted(index, tableBytes, DESCRIPTOR_SIZE));
        }
        // WHY: a chain may not be longer than the queue (spec 2.7.5.2), and a
        // bigger table would let one request make the device walk up to 2^28 entries.
        if (tableBytes > descriptorTableBytes(size)) {
            throw fail("descriptor %d's indirect table of %d entries is larger than the queue size %d"
                    .formatted(index, tableBytes / DESCRIPTOR_SIZE, size));
        }
        if (!memory.contains(tableAddress, tableBytes)) {
            throw fail("descriptor %d's indirect table [0x%x, +0x%x) is not wholly inside guest memory"
                    .formatted(index, tableAddress, tableBytes));
        }
        int entries = (int) (tableBytes / DESCRIPTOR_SIZE);
        long tableOffset = tableAddress - memory.base();
        int entry = 0;
        for (int hops = 1; ; hops++) {
            if (hops > entries) {
                throw fail("indirect chain of descriptor %d is longer than its table of %d entries (a loop?)".formatted(index, entries));
            }
            long offset = tableOffset + (long) DESCRIPTOR_SIZE * entry;
            long address = ram.get(U64, offset);
            int length = ram.get(U32, offset + 8);
            int flags = Short.toUnsignedInt(ram.get(U16, offset + 12));
            int nextEntry = Short.toUnsignedInt(ram.get(U16, offset + 14));
            // Spec: a driver MUST NOT set INDIRECT within an indirect table. Nesting
            // would let a few bytes of guest memory fan out into unbounded work.
            if ((flags & VIRTQ_DESC_F_INDIRECT) != 0) {
                throw fail("indirect table entry %d of descriptor %d is itself INDIRECT (nested tables are not allowed)"
                        .formatted(entry, index));
            }
            sawWritable = append(index, entry, address, length, flags, sawWritable);
            if ((flags & VIRTQ_DESC_F_NEXT) == 0) {
                return;
            }
            if (nextEntry >= entries) {
                throw fail("indirect table entry %d of descriptor %d: next index %d is outside the table of %d entries"
                        .formatted(entry, index, nextEntry, entries));
            }
            entry = nextEntry;
        }
    }

    /** Checks one buffer and appends it; returns whether a writable buffer has now been seen. */
    private boolean append(int index, int entry, long address, int length, int flags, boolean sawWritable) {
        boolean writable = (flags & VIRTQ_DESC_F_WRITE) != 0;
        long bytes = Integer.toUnsignedLong(length);
        // WHY: addr is a u64 the driver chose; contains() also refuses addr + len wrapping past 2^64.
        if (!memory.contains(address, bytes)) {
            throw fail("%s: buffer [0x%x, +0x%x) is not wholly inside guest memory [0x%x, 0x%x)"
                    .formatted(where(index, entry), address, bytes, memory.base(), memory.base() + memory.size()));
        }
        // Spec 2.7.4.2: device-readable buffers come before device-writable ones.
        // Devices rely on it to split request from response; refuse rather than guess.
        if (!writable && sawWritable) {
            throw fail("%s is device-readable but follows a device-writable one".formatted(where(index, entry)));
        }
        // Direct descriptors before an indirect table plus the table could exceed the queue size.
        if (chain.count() == size) {
            throw fail("descriptor chain from head %d has more than the queue size %d buffers".formatted(chain.head(), size));
        }
        chain.add(address, length, writable);
        return sawWritable || writable;
    }

    private static String where(int index, int entry) {
        return entry < 0 ? "descriptor " + index : "indirect table entry " + entry + " of descriptor " + index;
    }

    private VirtqueueException fail(String message) {
        broken = true;
        return new VirtqueueException(message + "; the queue is broken until the driver resets the device");
    }

    private void requireInactive(String operation) {
        if (active) {
            throw new IllegalStateException("cannot " + operation + " an active queue; reset it first");
        }
    }

    private void requireWorking() {
        if (!active) {
            throw new IllegalStateException("queue is not active");
        }
        if (broken) {
            throw new VirtqueueException("queue is broken by an earlier driver error; it refuses work until the driver resets the device");
        }
    }
}
