package org.nxia.device.virtio.internal.queue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.Deque;

import org.nxia.vmm.spi.GuestMemory;

/**
 * A well-behaved virtio driver for device tests: lays out one split virtqueue
 * in heap-backed guest memory, makes buffers available (direct chains and
 * indirect tables) the way a guest driver would, and reads back the used ring.
 * It also offers raw writes, so tests can play a hostile driver too.
 *
 * <p>Layout (all guest-physical, from {@code base}): descriptor table at
 * {@code base}, available ring right after it (2-aligned), used ring after that
 * (4-aligned, rounded to 16), then a bump-allocated data area for buffers and
 * indirect tables.
 */
public final class TestDriver {

    /** One buffer of a chain as the driver sees it. */
    public record Buffer(long address, int length, boolean writable) {
        public static Buffer readable(long address, int length) {
            return new Buffer(address, length, false);
        }

        public static Buffer writable(long address, int length) {
            return new Buffer(address, length, true);
        }
    }

    /** One used-ring element. */
    public record Used(int id, long length) {
    }

    private final GuestMemory memory;
    private final int size;
    private final long descriptorTable;
    private final long availRing;
    private final long usedRing;
    private final long dataStart;
    private long dataNext;
    private final Deque<Integer> freeDescriptors = new ArrayDeque<>();
    /** For each head in flight, the descriptor indices its chain uses. */
    private final int[][] chainOf;
    private int availIdx;
    private int lastUsedIdx;

    /** A driver over {@code memory} with the rings at the given addresses and buffers from {@code dataStart}. */
    public TestDriver(GuestMemory memory, int size, long descriptorTable, long availRing, long usedRing, long dataStart) {
        this.memory = memory;
        this.size = size;
        this.descriptorTable = descriptorTable;
        this.availRing = availRing;
        this.usedRing = usedRing;
        this.dataStart = dataStart;
        this.dataNext = dataStart;
        this.chainOf = new int[size][];
        for (int i = 0; i < size; i++) {
            freeDescriptors.add(i);
        }
    }

    /** A fresh {@code memoryBytes} heap-backed guest memory at guest-physical 0 with a queue of {@code size} laid out from 0x1000. */
    public static TestDriver create(int memoryBytes, int size) {
        return create(GuestMemory.of(0, MemorySegment.ofArray(new byte[memoryBytes])), size, 0x1000);
    }

    /** A queue of {@code size} laid out in {@code memory} from {@code start} (16-aligned). */
    public static TestDriver create(GuestMemory memory, int size, long start) {
        long desc = start;
        long avail = desc + SplitQueue.descriptorTableBytes(size);
        long used = align(avail + SplitQueue.availRingBytes(size), 4);
        long data = align(used + SplitQueue.usedRingBytes(size), 16);
        return new TestDriver(memory, size, desc, avail, used, data);
    }

    /** This driver, its rings, buffers and indices, over {@code other}: a copy of this memory, as in a VM restored from a snapshot. */
    public TestDriver onMemory(GuestMemory other) {
        TestDriver copy = new TestDriver(other, size, descriptorTable, availRing, usedRing, dataStart);
        copy.dataNext = dataNext;
        copy.freeDescriptors.clear();
        copy.freeDescriptors.addAll(freeDescriptors);
        for (int i = 0; i < size; i++) {
            copy.chainOf[i] = chainOf[i];
        }
        copy.availIdx = availIdx;
        copy.lastUsedIdx = lastUsedIdx;
        return copy;
    }

    public GuestMemory memory() {
        return memory;
    }

    public int size() {
        return size;
    }

    public long descriptorTable() {
        return descriptorTable;
    }

    public long availRing() {
        return availRing;
    }

    public long usedRing() {
        return usedRing;
    }

    /** A queue over this driver's memory, configured with its layout, negotiated {@code features}, and activated. */
    public SplitQueue activate(SplitQueue queue, long features) {
        queue.configure(size, descriptorTable, availRing, usedRing);
        queue.negotiate(features);
        queue.activate();
        return queue;
    }

    /** A new queue (max size = this driver's size), activated with {@code features}. */
    public SplitQueue newQueue(long features) {
        return activate(new SplitQueue(memory, size), features);
    }

    /** {@code bytes} of fresh data area, 16-aligned, filled with {@code fill}. */
    public long allocate(int bytes, byte fill) {
        long address = dataNext;
        dataNext = align(dataNext + bytes, 16);
        memory.check(address, bytes);
        memory.slice(address, bytes).fill(fill);
        return address;
    }

    /** {@code bytes} of fresh, zeroed data area. */
    public long allocate(int bytes) {
        return allocate(bytes, (byte) 0);
    }

    /** Rewinds the data area (buffers already handed out may be reused). */
    public void resetData() {
        dataNext = dataStart;
    }

    /**
     * Makes a direct chain available: takes free descriptors, links them with
     * NEXT in order, and publishes the head. Returns the head index.
     */
    public int addChain(Buffer... buffers) {
        int head = writeChain(buffers);
        publish(head);
        return head;
    }

    /**
     * Makes an indirect chain available: writes {@code buffers} as a table in
     * the data area and one INDIRECT descriptor pointing at it. Returns the head index.
     */
    public int addIndirect(Buffer... buffers) {
        long table = allocate(buffers.length * SplitQueue.DESCRIPTOR_SIZE);
        for (int i = 0; i < buffers.length; i++) {
            Buffer b = buffers[i];
            int flags = (b.writable() ? SplitQueue.VIRTQ_DESC_F_WRITE : 0) | (i + 1 < buffers.length ? SplitQueue.VIRTQ_DESC_F_NEXT : 0);
            writeDescriptorAt(table + (long) i * SplitQueue.DESCRIPTOR_SIZE, b.address(), b.length(), flags, i + 1 < buffers.length ? i + 1 : 0);
        }
        int head = takeDescriptor();
        chainOf[head] = new int[] {head};
        writeDescriptor(head, table, buffers.length * SplitQueue.DESCRIPTOR_SIZE, SplitQueue.VIRTQ_DESC_F_INDIRECT, 0);
        publish(head);
        return head;
    }

    /** Writes a direct chain into the descriptor table without publishing it; returns its head. */
    public int writeChain(Buffer... buffers) {
        if (buffers.length == 0 || buffers.length > freeDescriptors.size()) {
            throw new IllegalStateException("cannot place a chain of " + buffers.length + " with " + freeDescriptors.size() + " free descriptors");
        }
        int[] indices = new int[buffers.length];
        for (int i = 0; i < buffers.length; i++) {
            indices[i] = takeDescriptor();
        }
        for (int i = 0; i < buffers.length; i++) {
            Buffer b = buffers[i];
            boolean more = i + 1 < buffers.length;
            int flags = (b.writable() ? SplitQueue.VIRTQ_DESC_F_WRITE : 0) | (more ? SplitQueue.VIRTQ_DESC_F_NEXT : 0);
            writeDescriptor(indices[i], b.address(), b.length(), flags, more ? indices[i + 1] : 0);
        }
        chainOf[indices[0]] = indices;
        return indices[0];
    }

    /** Puts {@code head} in the next available-ring slot and bumps avail idx (after the entry, as a driver's write barrier orders it). */
    public void publish(int head) {
        writeU16(availRing + 4 + 2L * (availIdx & (size - 1)), head);
        availIdx = (availIdx + 1) & 0xffff;
        writeU16(availRing + 2, availIdx);
    }

    /** Raw write of descriptor {@code index} in the table. */
    public void writeDescriptor(int index, long address, int length, int flags, int next) {
        writeDescriptorAt(descriptorTable + (long) SplitQueue.DESCRIPTOR_SIZE * index, address, length, flags, next);
    }

    /** Raw write of a 16-byte descriptor anywhere (an indirect table entry). */
    public void writeDescriptorAt(long gpa, long address, int length, int flags, int next) {
        memory.writeLong(gpa, address);
        memory.writeInt(gpa + 8, length);
        memory.writeShort(gpa + 12, (short) flags);
        memory.writeShort(gpa + 14, (short) next);
    }

    /** The driver's avail idx (what it last published). */
    public int availIdx() {
        return availIdx;
    }

    /** Raw write of avail idx, as a hostile driver would; the driver's own count follows it. */
    public void setAvailIdx(int idx) {
        availIdx = idx & 0xffff;
        writeU16(availRing + 2, availIdx);
    }

    /**
     * Starts both the driver's indices at {@code idx}, for a device restored
     * with {@code lastAvailIdx = usedIdx = idx} (to exercise 16-bit wraparound).
     */
    public void startAt(int idx) {
        availIdx = idx & 0xffff;
        lastUsedIdx = idx & 0xffff;
        writeU16(availRing + 2, availIdx);
        writeU16(usedRing + 2, lastUsedIdx);
    }

    /** Raw write of available-ring slot {@code slot}. */
    public void writeAvailEntry(int slot, int head) {
        writeU16(availRing + 4 + 2L * slot, head);
    }

    public void setAvailFlags(int flags) {
        writeU16(availRing, flags);
    }

    /** EVENT_IDX: the used index at which the driver wants its next interrupt. */
    public void setUsedEvent(int idx) {
        writeU16(availRing + 4 + 2L * size, idx);
    }

    /** EVENT_IDX: the avail index at which the device wants its next notification. */
    public int availEvent() {
        return readU16(usedRing + 4 + 8L * size);
    }

    public int usedFlags() {
        return readU16(usedRing);
    }

    /** The device's used idx as published in guest memory. */
    public int usedIdx() {
        return readU16(usedRing + 2);
    }

    /** The next used element the driver has not consumed, freeing its descriptors, or {@code null}. */
    public Used pollUsed() {
        if (usedIdx() == lastUsedIdx) {
            return null;
        }
        long element = usedRing + 4 + 8L * (lastUsedIdx & (size - 1));
        Used used = new Used(memory.readInt(element), Integer.toUnsignedLong(memory.readInt(element + 4)));
        lastUsedIdx = (lastUsedIdx + 1) & 0xffff;
        if (used.id() >= 0 && used.id() < size && chainOf[used.id()] != null) {
            for (int index : chainOf[used.id()]) {
                freeDescriptors.add(index);
            }
            chainOf[used.id()] = null;
        }
        return used;
    }

    public int readU16(long address) {
        return Short.toUnsignedInt(memory.slice(address, 2).get(ValueLayout.JAVA_SHORT_UNALIGNED, 0));
    }

    public void writeU16(long address, int value) {
        memory.writeShort(address, (short) value);
    }

    private int takeDescriptor() {
        Integer index = freeDescriptors.poll();
        if (index == null) {
            throw new IllegalStateException("no free descriptors");
        }
        return index;
    }

    private static long align(long value, long alignment) {
        return (value + alignment - 1) & -alignment;
    }
}
