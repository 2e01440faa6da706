package org.nxia.device.virtio.internal.queue;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.nxia.device.virtio.internal.queue.SplitQueue.F_EVENT_IDX;
import static org.nxia.device.virtio.internal.queue.SplitQueue.F_INDIRECT_DESC;
import static org.nxia.device.virtio.internal.queue.SplitQueue.VIRTQ_DESC_F_INDIRECT;
import static org.nxia.device.virtio.internal.queue.SplitQueue.VIRTQ_DESC_F_NEXT;
import static org.nxia.device.virtio.internal.queue.SplitQueue.VIRTQ_DESC_F_WRITE;
import static org.nxia.device.virtio.internal.queue.TestDriver.Buffer.readable;
import static org.nxia.device.virtio.internal.queue.TestDriver.Buffer.writable;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.Consumer;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.GuestMemory;

/**
 * The queue's edges that the main tests leave open (found by mutation testing):
 * every operation refused on an inactive or broken queue, the exact bounds of
 * sizes, heads, give-backs and saved states, notification requests, indirect
 * tables in RAM that does not start at 0, and what the errors name.
 */
class SplitQueueEdgesTest {

    private static final int MEMORY = 64 * 1024;

    private final TestDriver driver = TestDriver.create(MEMORY, 8);

    @Test
    void everyRingOperationIsRefusedOnAQueueNotYetActive() {
        SplitQueue queue = new SplitQueue(driver.memory(), 8);
        List<Consumer<SplitQueue>> operations = List.of(SplitQueue::next, q -> q.pushUsed(0, 0), SplitQueue::needsNotification,
                SplitQueue::enableNotification, SplitQueue::disableNotification, SplitQueue::hasAvailable,
                SplitQueue::notifyOnNextAvailable, q -> q.unpop(0));
        for (Consumer<SplitQueue> op : operations) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> op.accept(queue));
            assertEquals("queue is not active", e.getMessage());
        }
        // and none of them wrote into the rings
        assertEquals(0, driver.usedFlags());
        assertEquals(0, driver.availEvent());
    }

    @Test
    void everyRingOperationIsRefusedOnABrokenQueue() {
        SplitQueue queue = driver.newQueue(F_EVENT_IDX);
        driver.writeAvailEntry(0, 99);
        driver.setAvailIdx(1);
        assertThrows(VirtqueueException.class, queue::next);
        assertTrue(queue.isBroken());
        List<Consumer<SplitQueue>> operations = List.of(SplitQueue::next, SplitQueue::enableNotification,
                SplitQueue::disableNotification, SplitQueue::hasAvailable, SplitQueue::notifyOnNextAvailable, q -> q.unpop(0));
        for (Consumer<SplitQueue> op : operations) {
            VirtqueueException e = assertThrows(VirtqueueException.class, () -> op.accept(queue));
            assertTrue(e.getMessage().contains("broken by an earlier driver error"), e.getMessage());
        }
        assertEquals(0, driver.availEvent(), "a broken queue asks the driver for nothing");
    }

    @Test
    void theFeaturesAreFixedWhileTheQueueIsActive() {
        SplitQueue queue = driver.newQueue(0);
        assertThrows(IllegalStateException.class, () -> queue.negotiate(F_EVENT_IDX));
        assertEquals(0, queue.features());
        queue.reset();
        queue.negotiate(F_EVENT_IDX | F_INDIRECT_DESC | 1);
        assertEquals(F_EVENT_IDX | F_INDIRECT_DESC, queue.features());
    }

    @Test
    void hasAvailableSaysWhetherTheDriverPublishedChainsNotYetTaken() {
        SplitQueue queue = driver.newQueue(0);
        assertFalse(queue.hasAvailable());
        driver.addChain(readable(driver.allocate(8), 8));
        assertTrue(queue.hasAvailable());
        assertNotNull(queue.next());
        assertFalse(queue.hasAvailable());
    }

    @Test
    void notifyOnNextAvailableWithEventIdxAsksAtTheDriversIndexNotTheDevicesNext() {
        SplitQueue queue = driver.newQueue(F_EVENT_IDX);
        driver.addChain(readable(driver.allocate(8), 8));
        driver.addChain(readable(driver.allocate(8), 8));
        driver.addChain(readable(driver.allocate(8), 8));
        assertNotNull(queue.next());   // the device took one of three
        queue.notifyOnNextAvailable();
        assertEquals(3, driver.availEvent(), "avail_event is the driver's avail idx");
        assertEquals(0, driver.usedFlags(), "with EVENT_IDX the flags are left alone");
        queue.enableNotification();
        assertEquals(1, driver.availEvent(), "enableNotification asks at the device's next index");
    }

    @Test
    void notifyOnNextAvailableWithoutEventIdxClearsNoNotify() {
        SplitQueue queue = driver.newQueue(0);
        queue.disableNotification();
        assertEquals(SplitQueue.VIRTQ_USED_F_NO_NOTIFY, driver.usedFlags());
        driver.addChain(readable(driver.allocate(8), 8));
        queue.notifyOnNextAvailable();
        assertEquals(0, driver.usedFlags());
        assertEquals(0, driver.availEvent(), "without EVENT_IDX avail_event is not written");
    }

    @Test
    void unpopGivesBackAtMostTheChainsInFlight() {
        SplitQueue queue = driver.newQueue(0);
        int[] heads = new int[3];
        for (int i = 0; i < 3; i++) {
            heads[i] = driver.addChain(readable(driver.allocate(8), 8));
        }
        assertEquals(heads[0], queue.next().head());
        assertEquals(heads[1], queue.next().head());
        assertEquals(heads[2], queue.next().head());
        queue.pushUsed(heads[0], 0);
        // two in flight (last available 3, used 1)
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> queue.unpop(3));
        assertEquals("cannot give back 3 chains; 2 are in flight", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> queue.unpop(-1));
        queue.unpop(2);
        assertEquals(heads[1], queue.next().head(), "the given-back chains come again, in order");
        assertEquals(heads[2], queue.next().head());
        assertNull(queue.next());
        assertFalse(queue.isBroken());
    }

    @Test
    void pushUsedTakesHeadsZeroToSizeMinusOne() {
        SplitQueue queue = driver.newQueue(0);
        int head = driver.addChain(readable(driver.allocate(8), 8));
        assertEquals(0, head);
        driver.addChain(readable(driver.allocate(8), 8));
        queue.next();
        queue.next();
        assertThrows(IllegalArgumentException.class, () -> queue.pushUsed(8, 0));
        assertThrows(IllegalArgumentException.class, () -> queue.pushUsed(-1, 0));
        assertThrows(IllegalArgumentException.class, () -> queue.pushUsed(0, -1));
        assertThrows(IllegalArgumentException.class, () -> queue.pushUsed(0, 0x1_0000_0000L));
        queue.pushUsed(0, 0xffff_ffffL);
        queue.pushUsed(7, 0);
        assertEquals(new TestDriver.Used(0, 0xffff_ffffL), driver.pollUsed());
        assertEquals(new TestDriver.Used(7, 0), driver.pollUsed());
    }

    @Test
    void sizesOneAndThirtyTwoThousandSevenHundredSixtyEightAreValid() {
        GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[MEMORY]));
        assertEquals(SplitQueue.MAX_SIZE, new SplitQueue(memory, SplitQueue.MAX_SIZE).maxSize());
        assertThrows(IllegalArgumentException.class, () -> new SplitQueue(memory, SplitQueue.MAX_SIZE * 2));
        assertThrows(IllegalArgumentException.class, () -> new SplitQueue(memory, 0));
        TestDriver one = TestDriver.create(memory, 1, 0x1000);
        SplitQueue queue = one.newQueue(0);
        assertEquals(1, queue.size());
        assertEquals(1, queue.maxSize());
        int head = one.addChain(writable(one.allocate(4), 4));
        assertEquals(head, queue.next().head());
    }

    @Test
    void configureRecordsTheSizeTheDriverWrote() {
        SplitQueue queue = new SplitQueue(driver.memory(), 8);
        assertEquals(8, queue.size(), "the maximum until the driver writes one");
        queue.configure(4, driver.descriptorTable(), driver.availRing(), driver.usedRing());
        assertEquals(4, queue.size());
        queue.reset();
        assertEquals(8, queue.size());
    }

    @Test
    void withEventIdxTheDriverIsInterruptedOnlyWhenUsedPassesUsedEvent() {
        SplitQueue queue = driver.newQueue(F_EVENT_IDX);
        assertTrue(queue.needsNotification(), "the first call after activation notifies");
        int head = driver.addChain(readable(driver.allocate(8), 8));
        queue.next();
        queue.pushUsed(head, 0);
        driver.setUsedEvent(5);   // the driver wants to hear once used passes 5
        assertFalse(queue.needsNotification(), "used idx 1 has not passed used_event 5");
        head = driver.addChain(readable(driver.allocate(8), 8));
        queue.next();
        queue.pushUsed(head, 0);
        driver.setUsedEvent(1);
        assertTrue(queue.needsNotification(), "used idx 2 passed used_event 1");
    }

    @Test
    void aSavedStateMayHaveAsManyChainsInFlightAsTheQueueHoldsNotMore() {
        GuestMemory memory = driver.memory();
        SplitQueue full = new SplitQueue(memory, 8);
        full.restore(new SplitQueueState(8, driver.descriptorTable(), driver.availRing(), driver.usedRing(), 0, 8, 0, false));
        assertTrue(full.isActive());
        SplitQueue over = new SplitQueue(memory, 8);
        VirtqueueException e = assertThrows(VirtqueueException.class, () -> over.restore(
                new SplitQueueState(8, driver.descriptorTable(), driver.availRing(), driver.usedRing(), 0, 9, 0, false)));
        assertTrue(e.getMessage().contains("9 chains in flight"), e.getMessage());
        assertFalse(over.isActive());
    }

    @Test
    void aResetEmptiesTheChainCursor() {
        SplitQueue queue = driver.newQueue(0);
        driver.addChain(readable(driver.allocate(8), 8), writable(driver.allocate(8), 8));
        DescriptorChain chain = queue.next();
        assertEquals(2, chain.count());
        queue.reset();
        assertEquals(0, chain.count());
        assertEquals(0, chain.readableBytes());
        assertEquals(0, chain.writableBytes());
        assertThrows(IndexOutOfBoundsException.class, () -> chain.address(0));
    }

    @Test
    void aChainRefusesIndicesPastItsLastBuffer() {
        SplitQueue queue = driver.newQueue(0);
        driver.addChain(readable(driver.allocate(8), 8), writable(driver.allocate(8), 8));
        DescriptorChain chain = queue.next();
        assertDoesNotThrow(() -> chain.address(1));
        IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, () -> chain.length(2));
        assertEquals("buffer 2 of a chain of 2", e.getMessage());
        assertThrows(IndexOutOfBoundsException.class, () -> chain.isWritable(-1));
        assertEquals(8, new DescriptorChain(8).capacity());
    }

    @Test
    void indirectTablesAreReadWhereTheyAreInRamThatDoesNotStartAtZero() {
        long base = 0x10_0000;
        GuestMemory memory = GuestMemory.of(base, MemorySegment.ofArray(new byte[MEMORY]));
        TestDriver high = TestDriver.create(memory, 8, base + 0x1000);
        SplitQueue queue = high.newQueue(F_INDIRECT_DESC);
        long a = high.allocate(32);
        long b = high.allocate(64);
        long c = high.allocate(4);
        int head = high.addIndirect(readable(a, 32), readable(b, 64), writable(c, 4));
        DescriptorChain chain = queue.next();
        assertEquals(head, chain.head());
        assertEquals(3, chain.count());
        assertEquals(List.of(a, b, c), List.of(chain.address(0), chain.address(1), chain.address(2)));
        assertEquals(List.of(32L, 64L, 4L), List.of(chain.length(0), chain.length(1), chain.length(2)));
        assertEquals(96, chain.readableBytes());
        assertEquals(4, chain.writableBytes());
    }

    @Test
    void errorsNameTheDescriptorOrTheIndirectEntryAndTheRamBounds() {
        SplitQueue direct = driver.newQueue(0);
        driver.addChain(readable(0x20_0000, 8));
        VirtqueueException e = assertThrows(VirtqueueException.class, direct::next);
        assertTrue(e.getMessage().startsWith("descriptor 0: buffer [0x200000, +0x8) is not wholly inside guest memory [0x0, 0x10000)"),
                e.getMessage());

        TestDriver second = TestDriver.create(MEMORY, 8);
        SplitQueue indirect = second.newQueue(F_INDIRECT_DESC);
        long table = second.allocate(16);
        second.writeDescriptorAt(table, 0x20_0000, 8, 0, 0);
        second.writeDescriptor(3, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
        second.publish(3);
        e = assertThrows(VirtqueueException.class, indirect::next);
        assertTrue(e.getMessage().startsWith("indirect table entry 0 of descriptor 3: buffer [0x200000, +0x8)"), e.getMessage());

        SplitQueue ring = new SplitQueue(driver.memory(), 8);
        ring.configure(8, 0xfff0, driver.availRing(), driver.usedRing());
        e = assertThrows(VirtqueueException.class, ring::activate);
        assertEquals("descriptor table [0xfff0, +0x80) is not wholly inside guest memory [0x0, 0x10000)", e.getMessage());
    }

    @Test
    void aWritableDescriptorBeforeAReadableOneIsNamed() {
        SplitQueue queue = driver.newQueue(0);
        driver.writeDescriptor(2, driver.allocate(8), 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 5);
        driver.writeDescriptor(5, driver.allocate(8), 8, 0, 0);
        driver.publish(2);
        VirtqueueException e = assertThrows(VirtqueueException.class, queue::next);
        assertTrue(e.getMessage().startsWith("descriptor 5 is device-readable but follows a device-writable one"), e.getMessage());
    }
}
