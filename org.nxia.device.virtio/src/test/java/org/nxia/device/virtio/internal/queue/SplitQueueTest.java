package org.nxia.device.virtio.internal.queue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
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

import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.GuestMemory;

class SplitQueueTest {

    private static final int MEMORY = 64 * 1024;

    private final TestDriver driver = TestDriver.create(MEMORY, 8);

    private VirtqueueException assertBreaks(SplitQueue queue, String messagePart) {
        VirtqueueException e = assertThrows(VirtqueueException.class, queue::next);
        assertTrue(e.getMessage().contains(messagePart), () -> "message '" + e.getMessage() + "' should contain '" + messagePart + "'");
        assertTrue(queue.isBroken());
        return e;
    }

    private static VirtqueueException assertRefusedGeometry(int size, long desc, long avail, long used, String messagePart) {
        SplitQueue queue = new SplitQueue(GuestMemory.of(0, MemorySegment.ofArray(new byte[MEMORY])), 256);
        queue.configure(size, desc, avail, used);
        VirtqueueException e = assertThrows(VirtqueueException.class, queue::activate);
        assertTrue(e.getMessage().contains(messagePart), () -> "message '" + e.getMessage() + "' should contain '" + messagePart + "'");
        assertFalse(queue.isActive());
        return e;
    }

    // ------------------------------------------------------------ happy paths

    @Test
    void ringsSayWhatGuestMemoryHoldsOnBothSides() {
        SplitQueue queue = new SplitQueue(driver.memory(), 8);
        assertEquals("", queue.rings(), "nothing while inactive");
        driver.activate(queue, F_EVENT_IDX);
        driver.addChain(readable(driver.allocate(16), 16));
        driver.addChain(readable(driver.allocate(16), 16));
        driver.setUsedEvent(7);
        queue.next();
        queue.enableNotification();
        assertEquals("avail.idx=2 used_event=7 used.idx=0 avail_event=1", queue.rings(), "one chain taken, none used yet");
    }

    @Test
    void emptyQueueYieldsNoChain() {
        SplitQueue queue = driver.newQueue(0);
        assertNull(queue.next());
    }

    @Test
    void popsSingleReadableBuffer() {
        SplitQueue queue = driver.newQueue(0);
        long buffer = driver.allocate(100);
        int head = driver.addChain(readable(buffer, 100));

        DescriptorChain chain = queue.next();
        assertNotNull(chain);
        assertEquals(head, chain.head());
        assertEquals(1, chain.count());
        assertEquals(1, chain.readableCount());
        assertEquals(buffer, chain.address(0));
        assertEquals(100, chain.length(0));
        assertFalse(chain.isWritable(0));
        assertEquals(100, chain.readableBytes());
        assertNull(queue.next());
    }

    @Test
    void popsChainWithReadableThenWritableBuffers() {
        SplitQueue queue = driver.newQueue(0);
        long header = driver.allocate(16);
        long body = driver.allocate(512);
        long status = driver.allocate(1);
        driver.addChain(readable(header, 16), writable(body, 512), writable(status, 1));

        DescriptorChain chain = queue.next();
        assertEquals(3, chain.count());
        assertEquals(1, chain.readableCount());
        assertEquals(2, chain.writableCount());
        assertEquals(16, chain.readableBytes());
        assertEquals(513, chain.writableBytes());
        assertEquals(body, chain.address(1));
        assertTrue(chain.isWritable(2));
    }

    @Test
    void chainCursorIsReusedWithoutAllocation() {
        SplitQueue queue = driver.newQueue(0);
        driver.addChain(readable(driver.allocate(8), 8));
        driver.addChain(readable(driver.allocate(8), 8));
        assertSame(queue.next(), queue.next());
    }

    @Test
    void followsIndirectTableWhenNegotiated() {
        SplitQueue queue = driver.newQueue(F_INDIRECT_DESC);
        long a = driver.allocate(32);
        long b = driver.allocate(64);
        long c = driver.allocate(4);
        int head = driver.addIndirect(readable(a, 32), readable(b, 64), writable(c, 4));

        DescriptorChain chain = queue.next();
        assertEquals(head, chain.head());
        assertEquals(3, chain.count());
        assertEquals(2, chain.readableCount());
        assertEquals(c, chain.address(2));
        assertTrue(chain.isWritable(2));
    }

    @Test
    void acceptsDirectDescriptorsFollowedByIndirectTable() {
        SplitQueue queue = driver.newQueue(F_INDIRECT_DESC);
        long table = driver.allocate(32);
        driver.writeDescriptorAt(table, driver.allocate(8), 8, VIRTQ_DESC_F_NEXT, 1);
        driver.writeDescriptorAt(table + 16, driver.allocate(8), 8, VIRTQ_DESC_F_WRITE, 0);
        driver.writeDescriptor(0, driver.allocate(4), 4, VIRTQ_DESC_F_NEXT, 1);
        driver.writeDescriptor(1, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
        driver.publish(0);

        DescriptorChain chain = queue.next();
        assertEquals(3, chain.count());
        assertEquals(2, chain.readableCount());
    }

    @Test
    void returnsUsedChainsToTheDriver() {
        SplitQueue queue = driver.newQueue(0);
        int head = driver.addChain(writable(driver.allocate(64), 64));
        DescriptorChain chain = queue.next();
        queue.pushUsed(chain.head(), 42);

        assertEquals(1, driver.usedIdx());
        assertEquals(new TestDriver.Used(head, 42), driver.pollUsed());
        assertNull(driver.pollUsed());
    }

    @Test
    void sixteenBitIndicesWrapPast65535() {
        SplitQueue queue = new SplitQueue(driver.memory(), 8);
        queue.restore(new SplitQueueState(8, driver.descriptorTable(), driver.availRing(), driver.usedRing(), 0, 65533, 65533, false));
        driver.startAt(65533);
        long buffer = driver.allocate(8);
        for (int round = 0; round < 20; round++) {
            int head = driver.addChain(writable(buffer, 8));
            DescriptorChain chain = queue.next();
            assertNotNull(chain, "round " + round);
            assertEquals(head, chain.head());
            queue.pushUsed(chain.head(), round);
            assertEquals(new TestDriver.Used(head, round), driver.pollUsed());
            assertNull(queue.next());
        }
        assertEquals((65533 + 20) & 0xffff, driver.usedIdx());
        assertEquals(17, queue.state().lastAvailIdx());
    }

    @Test
    void fillsWholeQueueAcrossIndexWrap() {
        SplitQueue queue = new SplitQueue(driver.memory(), 8);
        queue.restore(new SplitQueueState(8, driver.descriptorTable(), driver.availRing(), driver.usedRing(), 0, 65532, 65532, false));
        driver.startAt(65532);
        for (int i = 0; i < 8; i++) {
            driver.addChain(readable(driver.allocate(8), 8));
        }
        for (int i = 0; i < 8; i++) {
            DescriptorChain chain = queue.next();
            assertNotNull(chain);
            queue.pushUsed(chain.head(), 0);
        }
        assertNull(queue.next());
        assertEquals(4, driver.usedIdx());
    }

    @Test
    void withoutEventIdxNotifiesUnlessDriverSetsNoInterrupt() {
        SplitQueue queue = driver.newQueue(0);
        long buffer = driver.allocate(8);
        driver.addChain(writable(buffer, 8));
        queue.pushUsed(queue.next().head(), 8);
        assertTrue(queue.needsNotification());
        assertFalse(queue.needsNotification(), "nothing new was used");

        driver.pollUsed();
        driver.setAvailFlags(SplitQueue.VIRTQ_AVAIL_F_NO_INTERRUPT);
        driver.addChain(writable(buffer, 8));
        queue.pushUsed(queue.next().head(), 8);
        assertFalse(queue.needsNotification());
    }

    @Test
    void eventIdxSuppressesNotificationsUntilUsedEventIsReached() {
        SplitQueue queue = driver.newQueue(F_EVENT_IDX);
        long buffer = driver.allocate(8);
        // The first notification after activation always goes out.
        driver.addChain(writable(buffer, 8));
        queue.pushUsed(queue.next().head(), 8);
        assertTrue(queue.needsNotification());
        driver.pollUsed();

        // The driver wants an interrupt only once used idx passes 3 (entry index 3 used).
        driver.setUsedEvent(3);
        driver.setAvailFlags(SplitQueue.VIRTQ_AVAIL_F_NO_INTERRUPT); // ignored with EVENT_IDX
        boolean[] notified = new boolean[5];
        for (int i = 1; i < 5; i++) {
            driver.addChain(writable(buffer, 8));
            queue.pushUsed(queue.next().head(), 8);
            notified[i] = queue.needsNotification();
            driver.pollUsed();
        }
        // used idx goes 2, 3, 4, 5: only the step past entry 3 (idx 3 -> 4) notifies.
        assertFalse(notified[1]);
        assertFalse(notified[2]);
        assertTrue(notified[3]);
        assertFalse(notified[4]);
    }

    @Test
    void eventIdxNotifiesWhenBatchSkipsOverUsedEvent() {
        SplitQueue queue = driver.newQueue(F_EVENT_IDX);
        long buffer = driver.allocate(8);
        driver.addChain(writable(buffer, 8));
        queue.pushUsed(queue.next().head(), 8);
        queue.needsNotification();
        driver.pollUsed();
        driver.setUsedEvent(2);
        for (int i = 0; i < 3; i++) {
            driver.addChain(writable(buffer, 8));
        }
        for (int i = 0; i < 3; i++) {
            queue.pushUsed(queue.next().head(), 8);
        }
        assertTrue(queue.needsNotification(), "used idx went 1 -> 4, past used_event 2");
    }

    @Test
    void enableNotificationPublishesAvailEventAndReportsPendingWork() {
        SplitQueue queue = driver.newQueue(F_EVENT_IDX);
        assertFalse(queue.enableNotification());
        driver.addChain(readable(driver.allocate(8), 8));
        assertTrue(queue.enableNotification());
        queue.next();
        assertFalse(queue.enableNotification());
        assertEquals(1, driver.availEvent());
    }

    @Test
    void disableNotificationSetsNoNotifyWithoutEventIdx() {
        SplitQueue queue = driver.newQueue(0);
        queue.disableNotification();
        assertEquals(SplitQueue.VIRTQ_USED_F_NO_NOTIFY, driver.usedFlags());
        queue.enableNotification();
        assertEquals(0, driver.usedFlags());
    }

    @Test
    void savedStateRestoresIntoAFreshQueue() {
        SplitQueue queue = driver.newQueue(F_EVENT_IDX | F_INDIRECT_DESC);
        driver.addChain(readable(driver.allocate(8), 8));
        driver.addChain(readable(driver.allocate(8), 8));
        int first = queue.next().head();
        SplitQueueState state = queue.state();
        assertEquals(new SplitQueueState(8, driver.descriptorTable(), driver.availRing(), driver.usedRing(),
                F_EVENT_IDX | F_INDIRECT_DESC, 1, 0, false), state);

        SplitQueue restored = new SplitQueue(driver.memory(), 8);
        restored.restore(state);
        assertEquals(state, restored.state());
        assertNotNull(restored.next());
        restored.pushUsed(first, 0);
    }

    @Test
    void negotiateKeepsOnlyRingFeatures() {
        SplitQueue queue = new SplitQueue(driver.memory(), 8);
        queue.negotiate(-1L);
        assertEquals(F_EVENT_IDX | F_INDIRECT_DESC, queue.features());
    }

    @Test
    void resetClearsBrokenQueue() {
        SplitQueue queue = driver.newQueue(0);
        driver.setAvailIdx(100);
        assertBreaks(queue, "past the last seen");
        queue.reset();
        assertFalse(queue.isBroken());
        assertFalse(queue.isActive());
        TestDriver fresh = TestDriver.create(driver.memory(), 8, 0x4000);
        fresh.activate(queue, 0);
        fresh.addChain(readable(fresh.allocate(8), 8));
        assertNotNull(queue.next());
    }

    // ------------------------------------------------------------ hostile geometry

    @Test
    void rejectsQueueSizeNotPowerOfTwo() {
        assertRefusedGeometry(3, 0x1000, 0x2000, 0x3000, "not a power of two");
        assertRefusedGeometry(0, 0x1000, 0x2000, 0x3000, "not a power of two");
        assertRefusedGeometry(-8, 0x1000, 0x2000, 0x3000, "not a power of two");
        assertRefusedGeometry(65536, 0x1000, 0x2000, 0x3000, "not a power of two");
    }

    @Test
    void rejectsQueueSizeAboveDeviceMaximum() {
        assertRefusedGeometry(512, 0x1000, 0x2000, 0x3000, "exceeds the device's maximum 256");
    }

    @Test
    void rejectsMisalignedRings() {
        assertRefusedGeometry(8, 0x1008, 0x2000, 0x3000, "descriptor table at 0x1008 is not 16-byte aligned");
        assertRefusedGeometry(8, 0x1000, 0x2001, 0x3000, "available ring at 0x2001 is not 2-byte aligned");
        assertRefusedGeometry(8, 0x1000, 0x2000, 0x3002, "used ring at 0x3002 is not 4-byte aligned");
    }

    @Test
    void rejectsRingPartlyOutsideRam() {
        assertRefusedGeometry(8, MEMORY - 64, 0x2000, 0x3000, "descriptor table");
        assertRefusedGeometry(8, 0x1000, MEMORY - 16, 0x3000, "available ring");
        assertRefusedGeometry(8, 0x1000, 0x2000, MEMORY - 68, "used ring");
        assertRefusedGeometry(8, 0x1000, 0x2000, -4096, "used ring");
        assertRefusedGeometry(256, 0x1000, 0x2000, MEMORY - 2048, "used ring [0xf800, +0x806) is not wholly inside");
    }

    @Test
    void acceptsRingsEndingExactlyAtEndOfRam() {
        SplitQueue queue = new SplitQueue(driver.memory(), 8);
        queue.configure(8, MEMORY - 128 - 22 - 70 & ~15, MEMORY - 70 - 22, MEMORY - 70 & ~3);
        queue.activate();
        assertTrue(queue.isActive());
    }

    // ------------------------------------------------------------ hostile descriptors

    @Test
    void rejectsDescriptorAddressOutsideRam() {
        SplitQueue queue = driver.newQueue(0);
        driver.addChain(readable(MEMORY - 8, 16));
        assertBreaks(queue, "is not wholly inside guest memory");
    }

    @Test
    void rejectsDescriptorAddressAboveSignedRange() {
        SplitQueue queue = driver.newQueue(0);
        driver.addChain(readable(0x8000_0000_0000_0000L, 16));
        assertBreaks(queue, "descriptor 0: buffer [0x8000000000000000");
    }

    @Test
    void rejectsBufferWhoseEndWrapsPast2To64() {
        SplitQueue queue = driver.newQueue(0);
        driver.addChain(readable(-16L, 0xffff_ffff));
        assertBreaks(queue, "is not wholly inside guest memory");
    }

    @Test
    void rejectsDescriptorChainLongerThanQueue() {
        SplitQueue queue = driver.newQueue(0);
        for (int i = 0; i < 8; i++) {
            driver.writeDescriptor(i, 0x8000, 1, VIRTQ_DESC_F_NEXT, (i + 1) % 8);
        }
        driver.publish(0);
        assertBreaks(queue, "longer than the queue size 8");
    }

    @Test
    void rejectsDescriptorLoopOntoItself() {
        SplitQueue queue = driver.newQueue(0);
        driver.writeDescriptor(5, 0x8000, 1, VIRTQ_DESC_F_NEXT, 5);
        driver.publish(5);
        assertBreaks(queue, "(a loop?)");
    }

    @Test
    void rejectsNextIndexBeyondQueue() {
        SplitQueue queue = driver.newQueue(0);
        driver.writeDescriptor(0, 0x8000, 1, VIRTQ_DESC_F_NEXT, 8);
        driver.publish(0);
        assertBreaks(queue, "next index 8 is outside the queue of 8");
    }

    @Test
    void rejectsHeadIndexBeyondQueue() {
        SplitQueue queue = driver.newQueue(0);
        driver.publish(0xffff);
        assertBreaks(queue, "names head descriptor 65535");
    }

    @Test
    void rejectsAvailIndexJumpingPastQueueSize() {
        SplitQueue queue = driver.newQueue(0);
        driver.setAvailIdx(9);
        assertBreaks(queue, "available index 9 is 9 entries past the last seen 0");
    }

    @Test
    void rejectsAvailIndexMovingBackwards() {
        SplitQueue queue = driver.newQueue(0);
        driver.addChain(readable(0x8000, 1));
        queue.next();
        driver.setAvailIdx(0);
        assertBreaks(queue, "available index 0 is 65535 entries past");
    }

    @Test
    void rejectsReadableBufferAfterWritableOne() {
        SplitQueue queue = driver.newQueue(0);
        driver.addChain(writable(0x8000, 8), readable(0x9000, 8));
        assertBreaks(queue, "descriptor 1 is device-readable but follows a device-writable one");
    }

    @Test
    void rejectsIndirectWhenNotNegotiated() {
        SplitQueue queue = driver.newQueue(0);
        driver.addIndirect(readable(0x8000, 8));
        assertBreaks(queue, "VIRTIO_F_INDIRECT_DESC was not negotiated");
    }

    @Test
    void rejectsNestedIndirectTable() {
        SplitQueue queue = driver.newQueue(F_INDIRECT_DESC);
        long inner = driver.allocate(16);
        driver.writeDescriptorAt(inner, 0x8000, 8, 0, 0);
        long outer = driver.allocate(16);
        driver.writeDescriptorAt(outer, inner, 16, VIRTQ_DESC_F_INDIRECT, 0);
        driver.writeDescriptor(0, outer, 16, VIRTQ_DESC_F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(queue, "nested tables are not allowed");
    }

    @Test
    void rejectsIndirectTableLengthNotMultipleOf16() {
        SplitQueue queue = driver.newQueue(F_INDIRECT_DESC);
        driver.writeDescriptor(0, driver.allocate(32), 24, VIRTQ_DESC_F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(queue, "indirect table length 24 is not a non-zero multiple of 16");
    }

    @Test
    void rejectsEmptyIndirectTable() {
        SplitQueue queue = driver.newQueue(F_INDIRECT_DESC);
        driver.writeDescriptor(0, driver.allocate(32), 0, VIRTQ_DESC_F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(queue, "indirect table length 0");
    }

    @Test
    void rejectsIndirectTableLargerThanQueue() {
        SplitQueue queue = driver.newQueue(F_INDIRECT_DESC);
        driver.writeDescriptor(0, driver.allocate(16 * 9), 16 * 9, VIRTQ_DESC_F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(queue, "indirect table of 9 entries is larger than the queue size 8");
    }

    @Test
    void rejectsIndirectTableOutsideRam() {
        SplitQueue queue = driver.newQueue(F_INDIRECT_DESC);
        driver.writeDescriptor(0, MEMORY - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(queue, "indirect table [0xfff0, +0x20) is not wholly inside guest memory");
    }

    @Test
    void rejectsIndirectDescriptorWithNextFlag() {
        SplitQueue queue = driver.newQueue(F_INDIRECT_DESC);
        long table = driver.allocate(16);
        driver.writeDescriptorAt(table, 0x8000, 8, 0, 0);
        driver.writeDescriptor(0, table, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
        driver.writeDescriptor(1, 0x8000, 8, 0, 0);
        driver.publish(0);
        assertBreaks(queue, "sets both INDIRECT and NEXT");
    }

    @Test
    void rejectsLoopInsideIndirectTable() {
        SplitQueue queue = driver.newQueue(F_INDIRECT_DESC);
        long table = driver.allocate(32);
        driver.writeDescriptorAt(table, 0x8000, 8, VIRTQ_DESC_F_NEXT, 1);
        driver.writeDescriptorAt(table + 16, 0x8000, 8, VIRTQ_DESC_F_NEXT, 0);
        driver.writeDescriptor(0, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(queue, "longer than its table of 2 entries");
    }

    @Test
    void rejectsIndirectNextBeyondTable() {
        SplitQueue queue = driver.newQueue(F_INDIRECT_DESC);
        long table = driver.allocate(32);
        driver.writeDescriptorAt(table, 0x8000, 8, VIRTQ_DESC_F_NEXT, 2);
        driver.writeDescriptor(0, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(queue, "next index 2 is outside the table of 2 entries");
    }

    @Test
    void rejectsDirectPlusIndirectBuffersBeyondQueueSize() {
        SplitQueue queue = driver.newQueue(F_INDIRECT_DESC);
        long table = driver.allocate(16 * 8);
        for (int i = 0; i < 8; i++) {
            driver.writeDescriptorAt(table + 16L * i, 0x8000, 8, i < 7 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
        }
        driver.writeDescriptor(0, 0x8000, 8, VIRTQ_DESC_F_NEXT, 1);
        driver.writeDescriptor(1, table, 16 * 8, VIRTQ_DESC_F_INDIRECT, 0);
        driver.publish(0);
        assertBreaks(queue, "more than the queue size 8 buffers");
    }

    @Test
    void brokenQueueRefusesFurtherWork() {
        SplitQueue queue = driver.newQueue(0);
        driver.addChain(readable(0x8000, 8));
        queue.next();
        driver.addChain(readable(MEMORY, 8));
        assertBreaks(queue, "not wholly inside");

        // Even a now-valid ring is refused until the driver resets the device.
        driver.addChain(readable(0x8000, 8));
        assertBreaks(queue, "broken by an earlier driver error");
        assertThrows(VirtqueueException.class, () -> queue.pushUsed(0, 0));
        assertThrows(VirtqueueException.class, queue::needsNotification);
        assertTrue(queue.state().broken());
    }

    // ------------------------------------------------------------ device misuse

    @Test
    void pushUsedRejectsDeviceBugs() {
        SplitQueue queue = driver.newQueue(0);
        assertThrows(IllegalStateException.class, () -> queue.pushUsed(0, 0), "nothing in flight");
        driver.addChain(readable(0x8000, 8));
        queue.next();
        assertThrows(IllegalArgumentException.class, () -> queue.pushUsed(8, 0));
        assertThrows(IllegalArgumentException.class, () -> queue.pushUsed(0, 1L << 32));
        assertThrows(IllegalArgumentException.class, () -> queue.pushUsed(0, -1));
    }

    @Test
    void inactiveQueueRefusesWorkAndActiveQueueRefusesReconfiguration() {
        SplitQueue queue = new SplitQueue(driver.memory(), 8);
        assertThrows(IllegalStateException.class, queue::next);
        assertThrows(IllegalStateException.class, queue::state);
        driver.activate(queue, 0);
        assertThrows(IllegalStateException.class, () -> queue.configure(8, 0, 0, 0));
        assertThrows(IllegalStateException.class, queue::activate);
    }

    // ------------------------------------------------------------ hostile saved state

    @Test
    void restoreRefusesHostileState() {
        long d = driver.descriptorTable();
        long a = driver.availRing();
        long u = driver.usedRing();
        assertRestoreRefused(new SplitQueueState(6, d, a, u, 0, 0, 0, false), "not a power of two");
        assertRestoreRefused(new SplitQueueState(16, d, a, u, 0, 0, 0, false), "exceeds the device's maximum");
        assertRestoreRefused(new SplitQueueState(8, d + 8, a, u, 0, 0, 0, false), "not 16-byte aligned");
        assertRestoreRefused(new SplitQueueState(8, d, MEMORY - 2, u, 0, 0, 0, false), "available ring");
        assertRestoreRefused(new SplitQueueState(8, d, a, Long.MAX_VALUE - 3, 0, 0, 0, false), "used ring");
        assertRestoreRefused(new SplitQueueState(8, d, a, u, 1L << 32, 0, 0, false), "bits this queue does not implement");
        assertRestoreRefused(new SplitQueueState(8, d, a, u, 0, 65536, 0, false), "last available index 65536 is not a u16");
        assertRestoreRefused(new SplitQueueState(8, d, a, u, 0, -1, 0, false), "is not a u16");
        assertRestoreRefused(new SplitQueueState(8, d, a, u, 0, 0, 70000, false), "used index 70000 is not a u16");
        assertRestoreRefused(new SplitQueueState(8, d, a, u, 0, 9, 0, false), "9 chains in flight");
        assertRestoreRefused(new SplitQueueState(8, d, a, u, 0, 0, 1, false), "65535 chains in flight");
    }

    @Test
    void refusedRestoreLeavesQueueUnchanged() {
        SplitQueue queue = driver.newQueue(0);
        SplitQueueState before = queue.state();
        assertThrows(VirtqueueException.class,
                () -> queue.restore(new SplitQueueState(8, 0x1000, 0x2000, 0x3000, 0, 20, 0, false)));
        assertEquals(before, queue.state());
    }

    private void assertRestoreRefused(SplitQueueState state, String messagePart) {
        SplitQueue queue = new SplitQueue(driver.memory(), 8);
        VirtqueueException e = assertThrows(VirtqueueException.class, () -> queue.restore(state));
        assertTrue(e.getMessage().contains(messagePart), () -> "message '" + e.getMessage() + "' should contain '" + messagePart + "'");
        assertFalse(queue.isActive());
    }
}
