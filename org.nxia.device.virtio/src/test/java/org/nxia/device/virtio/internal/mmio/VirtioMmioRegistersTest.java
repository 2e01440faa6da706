package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.nxia.device.virtio.internal.mmio.VirtioMmioTransport.*;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.junit.jupiter.api.Test;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.vmm.spi.GuestMemory;

/**
 * The virtio-mmio register file, driven by a hostile driver against a backend
 * that records what reaches it: the bounds of the register window and of the
 * queue selector, the 64-bit registers written in halves, the status machine's
 * refusals, and what the transport tells the backend.
 */
class VirtioMmioRegistersTest {

    static final long F_VERSION_1 = 1L << 32;

    /** Two queues; config byte i reads as 0x40 + i; records resets and activations; serves by returning every chain with 0 bytes. */
    static final class Recorder implements VirtioBackend {
        final List<Integer> configOffsets = new ArrayList<>();
        int resets;
        int activations;
        SplitQueue[] queues;

        @Override
        public int deviceId() {
            return 42;
        }

        @Override
        public long features() {
            return 1L << 3;
        }

        @Override
        public int queueCount() {
            return 2;
        }

        @Override
        public long readConfig(int offset, int size) {
            configOffsets.add(offset);
            return 0x40 + offset;
        }

        @Override
        public void activate(long features, SplitQueue[] active) {
            activations++;
            queues = active;
        }

        @Override
        public void process(int queue) {
            var chain = queues[queue].next();
            while (chain != null) {
                queues[queue].pushUsed(chain.head(), 0);
                chain = queues[queue].next();
            }
        }

        @Override
        public void reset() {
            resets++;
        }

        /** After a restore: returns every chain queue 0 has, as vsock answers with its reset event. */
        @Override
        public boolean restored() {
            process(0);
            return false;
        }

        @Override
        public Record state() {
            return new Counts(resets, activations);
        }

        record Counts(int resets, int activations) {
        }
    }

    private final GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[1 << 20]));
    private final Recorder backend = new Recorder();
    private final VirtioMmioTransport transport = new VirtioMmioTransport("recorder", memory, backend);
    private final VirtioDevicesTest.Mmio m = new VirtioDevicesTest.Mmio(transport);

    private State state() {
        return (State) transport.state();
    }

    @Test
    void theConfigSpaceStartsAt0x100AndEndsWithTheWindow() {
        assertEquals(0x40, transport.read(CONFIG, 4));
        assertEquals(0x40 + 0xeff, transport.read(WINDOW - 1, 1));
        assertEquals(List.of(0, 0xeff), backend.configOffsets, "the backend sees offsets into its config space");
        assertEquals(0, transport.read(WINDOW, 4), "past the window: zero, and the backend is not asked");
        assertEquals(0, transport.read(Long.MAX_VALUE, 4));
        assertEquals(2, backend.configOffsets.size());
        assertEquals(0, transport.read(CONFIG_GENERATION + 2, 4), "a misaligned register reads as zero");
        assertEquals(0, transport.read(VERSION, 2), "a 2-byte register read is zero");
        assertEquals(2, transport.read(VERSION, 4));
    }

    @Test
    void theTransportNamesItsTypeAndOffersItsFeatures() {
        assertEquals("recorder", transport.type());
        assertEquals(42, m.r(DEVICE_ID));
        assertEquals(0x4149_584e, m.r(VENDOR_ID));
        m.w(DEVICE_FEATURES_SEL, 0);
        assertEquals((int) (SplitQueue.QUEUE_FEATURES | 1L << 3), m.r(DEVICE_FEATURES));
        m.w(DEVICE_FEATURES_SEL, 1);
        assertEquals(1, m.r(DEVICE_FEATURES));
        m.w(DEVICE_FEATURES_SEL, 2);
        assertEquals(0, m.r(DEVICE_FEATURES));
        assertEquals(-1, m.r(SHM_LEN_LOW), "no shared memory region");
    }

    @Test
    void onlyQueuesTheDeviceHasCanBeSelected() {
        m.w(QUEUE_SEL, 0);
        assertEquals(QUEUE_MAX, m.r(QUEUE_NUM_MAX));
        m.w(QUEUE_SEL, 1);
        assertEquals(QUEUE_MAX, m.r(QUEUE_NUM_MAX));
        m.w(QUEUE_SEL, 2);
        assertEquals(0, m.r(QUEUE_NUM_MAX), "queue 2 does not exist");
        assertEquals(0, m.r(QUEUE_READY));
        m.w(QUEUE_NUM, 16);
        m.w(QUEUE_DESC_LOW, 0x1000);
        m.w(QUEUE_DESC_HIGH, 1);
        m.w(QUEUE_READY, 1);
        m.w(QUEUE_SEL, -1);
        assertEquals(0, m.r(QUEUE_NUM_MAX));
        m.w(QUEUE_NUM, 16);
        m.w(QUEUE_READY, 1);
        m.w(QUEUE_READY, 0);
        assertFalse(m.needsReset(), "writes to a queue that does not exist are ignored");
        for (VirtioMmioTransport.SavedQueue q : transport.saved().queues()) {
            assertEquals(new VirtioMmioTransport.SavedQueue(0, 0, 0, 0, null), q);
        }
    }

    @Test
    void ringAddressesAreWrittenInHalvesAndFixedOnceTheQueueIsReady() {
        m.w(QUEUE_SEL, 1);
        m.w(QUEUE_NUM, 0x1_0010);   // only the low 16 bits are the size
        m.w(QUEUE_DESC_HIGH, 0x11);
        m.w(QUEUE_DESC_LOW, 0x1000);
        m.w(QUEUE_DRIVER_HIGH, 0x22);
        m.w(QUEUE_DRIVER_LOW, 0x2000);
        m.w(QUEUE_DEVICE_HIGH, 0x33);
        m.w(QUEUE_DEVICE_LOW, 0x3000);
        m.w(QUEUE_DESC_HIGH, 0x44);   // the high half again: the low half stays
        assertEquals(new VirtioMmioTransport.SavedQueue(16, 0x44_0000_1000L, 0x22_0000_2000L, 0x33_0000_3000L, null),
                transport.saved().queues().get(1));
        assertEquals(new VirtioMmioTransport.SavedQueue(0, 0, 0, 0, null), transport.saved().queues().get(0));

        assertTrue(m.negotiate(F_VERSION_1));
        TestDriver d = TestDriver.create(memory, 16, 0x10000);
        m.queue(1, d, 16);
        assertEquals(1, m.r(QUEUE_READY));
        // a ready queue's registers are fixed
        m.w(QUEUE_NUM, 8);
        m.w(QUEUE_DESC_LOW, 0);
        m.w(QUEUE_DESC_HIGH, 9);
        m.w(QUEUE_DRIVER_LOW, 0);
        m.w(QUEUE_DRIVER_HIGH, 9);
        m.w(QUEUE_DEVICE_LOW, 0);
        m.w(QUEUE_DEVICE_HIGH, 9);
        VirtioMmioTransport.SavedQueue q = transport.saved().queues().get(1);
        assertEquals(16, q.num());
        assertEquals(d.descriptorTable(), q.desc());
        assertEquals(d.availRing(), q.driver());
        assertEquals(d.usedRing(), q.device());
        assertNotNull(q.ready());
        assertEquals(16, state().queues().get(1).size());
        assertNull(state().queues().get(0), "queue 0 was never made ready");

        m.w(QUEUE_READY, 0);
        assertEquals(0, m.r(QUEUE_READY), "QueueReady 0 takes the queue back");
        assertNull(state().queues().get(1));
        m.w(QUEUE_DESC_HIGH, 0);
        m.w(QUEUE_DESC_LOW, 0x5000);
        assertEquals(0x5000, transport.saved().queues().get(1).desc(), "and its registers can be written again");
    }

    @Test
    void ringsAboveFourGibibytesAreWhereTheHighHalvesSay() {
        assertTrue(m.negotiate(F_VERSION_1));
        TestDriver d = TestDriver.create(memory, 16, 0x10000);
        m.w(QUEUE_SEL, 0);
        m.w(QUEUE_NUM, 16);
        m.w(QUEUE_DESC_LOW, d.descriptorTable());
        m.w(QUEUE_DRIVER_LOW, d.availRing());
        m.w(QUEUE_DRIVER_HIGH, 1);   // 4 GiB up: outside this 1 MiB of RAM
        m.w(QUEUE_DEVICE_LOW, d.usedRing());
        m.w(QUEUE_READY, 1);
        assertEquals(0, m.r(QUEUE_READY));
        assertTrue(m.needsReset());
        assertTrue(state().lastError().contains("available ring [0x1"), state().lastError());

        assertTrue(m.negotiate(F_VERSION_1));
        m.w(QUEUE_SEL, 0);
        m.w(QUEUE_NUM, 16);
        m.w(QUEUE_DESC_LOW, d.descriptorTable());
        m.w(QUEUE_DRIVER_LOW, d.availRing());
        m.w(QUEUE_DEVICE_LOW, d.usedRing());
        m.w(QUEUE_DEVICE_HIGH, 1);
        m.w(QUEUE_READY, 1);
        assertEquals(0, m.r(QUEUE_READY));
        assertTrue(state().lastError().contains("used ring [0x1"), state().lastError());
        assertEquals(2, state().errors());
    }

    @Test
    void driverFeaturesAreWrittenInHalvesUntilFeaturesOk() {
        m.w(STATUS, S_ACKNOWLEDGE | S_DRIVER);
        m.w(DRIVER_FEATURES_SEL, 1);
        m.w(DRIVER_FEATURES, 1);
        m.w(DRIVER_FEATURES_SEL, 0);
        m.w(DRIVER_FEATURES, 1 << 3);
        m.w(DRIVER_FEATURES_SEL, 2);
        m.w(DRIVER_FEATURES, -1);   // no third half
        assertEquals(F_VERSION_1 | 1L << 3, transport.saved().driverFeatures());
        m.w(DRIVER_FEATURES_SEL, 0);
        m.w(DRIVER_FEATURES, SplitQueue.F_EVENT_IDX);
        assertEquals(F_VERSION_1 | SplitQueue.F_EVENT_IDX, transport.saved().driverFeatures(), "a half is replaced, not OR-ed");
        m.w(STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
        assertEquals(S_FEATURES_OK, m.r(STATUS) & S_FEATURES_OK);
        m.w(DRIVER_FEATURES, 0);
        assertEquals(F_VERSION_1 | SplitQueue.F_EVENT_IDX, transport.saved().driverFeatures(), "fixed once accepted");
    }

    @Test
    void driverOkWithoutFeaturesOkNeedsResetAndActivatesNothing() {
        m.w(STATUS, S_ACKNOWLEDGE | S_DRIVER);
        m.w(STATUS, S_ACKNOWLEDGE | S_DRIVER | S_DRIVER_OK);
        assertTrue(m.needsReset());
        assertEquals(0, m.r(STATUS) & S_DRIVER_OK);
        assertEquals(0, backend.activations);
        assertEquals("DRIVER_OK without FEATURES_OK", state().lastError());
        assertEquals(1, state().errors());
        assertEquals(0, m.r(INTERRUPT_STATUS), "no notification without DRIVER_OK (virtio 1.2 §2.1.2): the driver reads the status");
    }

    @Test
    void aResetReachesTheBackendAndClearsTheRegisters() {
        assertTrue(m.negotiate(F_VERSION_1));   // negotiate starts with a reset
        assertEquals(1, backend.resets);
        m.w(QUEUE_SEL, 1);
        m.w(DEVICE_FEATURES_SEL, 1);
        m.queue(0, TestDriver.create(memory, 16, 0x10000), 16);
        m.driverOk();
        assertEquals(1, backend.activations);
        m.w(STATUS, 0);
        assertEquals(2, backend.resets);
        assertEquals(0, m.r(STATUS));
        VirtioMmioTransport.Saved s = transport.saved();
        assertEquals(0, s.queueSel());
        assertEquals(0, s.deviceFeaturesSel());
        assertEquals(0, s.driverFeatures());
        assertEquals(new VirtioMmioTransport.SavedQueue(0, 0, 0, 0, null), s.queues().get(0));
    }

    @Test
    void aNotifyOfTheQueuePastTheLastNeedsReset() {
        assertTrue(m.negotiate(F_VERSION_1));
        TestDriver d = TestDriver.create(memory, 16, 0x10000);
        m.queue(0, d, 16);
        m.queue(1, TestDriver.create(memory, 16, 0x20000), 16);
        m.driverOk();
        d.addChain(Buffer.writable(d.allocate(8), 8));
        m.w(QUEUE_NOTIFY, 0);
        assertNotNull(d.pollUsed());
        assertEquals(INT_USED_BUFFER, m.r(INTERRUPT_STATUS));
        m.w(QUEUE_NOTIFY, 2);
        assertTrue(m.needsReset());
        assertEquals("notify of queue 2, which is not ready", state().lastError());
        assertEquals(INT_USED_BUFFER | INT_CONFIG_CHANGE, m.r(INTERRUPT_STATUS));
        m.w(INTERRUPT_ACK, INT_USED_BUFFER);
        assertEquals(INT_CONFIG_CHANGE, m.r(INTERRUPT_STATUS));
    }

    @Test
    void aBrokenRingOnNotifyNeedsResetWithoutAUsedBufferInterrupt() {
        assertTrue(m.negotiate(F_VERSION_1));
        TestDriver d = TestDriver.create(memory, 16, 0x10000);
        m.queue(0, d, 16);
        m.driverOk();
        d.setAvailIdx(17);   // past the queue size
        m.w(QUEUE_NOTIFY, 0);
        assertTrue(m.needsReset());
        assertEquals(INT_CONFIG_CHANGE, m.r(INTERRUPT_STATUS), "nothing was used");
        m.w(QUEUE_NOTIFY, 0);
        assertEquals(1, state().errors(), "a device that needs a reset ignores further kicks");
    }

    /** A driver that set FEATURES_OK and made queue 0 ready, and then DRIVER_OK if {@code ok}; its state saved. */
    private byte[] savedWithQueue0(TestDriver d, boolean ok) {
        assertTrue(m.negotiate(F_VERSION_1));
        m.queue(0, d, 16);
        if (ok) {
            m.driverOk();
        }
        return transport.saveState();
    }

    @Test
    void aStateSavedBeforeDriverOkIsRestoredWithoutActivatingTheDevice() {
        TestDriver d = TestDriver.create(memory, 16, 0x10000);
        byte[] saved = savedWithQueue0(d, false);
        Recorder fresh = new Recorder();
        VirtioMmioTransport restored = new VirtioMmioTransport("recorder", memory, fresh);
        restored.restoreState(saved);
        assertEquals(0, fresh.activations, "no DRIVER_OK, no activation");
        VirtioDevicesTest.Mmio r = new VirtioDevicesTest.Mmio(restored);
        assertEquals(1, r.r(QUEUE_READY));
        r.w(QUEUE_NOTIFY, 0);
        assertTrue(r.needsReset(), "a kick before DRIVER_OK, as before the snapshot");
    }

    @Test
    void aRestoredDeviceInterruptsOnlyForWhatItUsedAfterTheRestore() {
        TestDriver d = TestDriver.create(memory, 16, 0x10000);
        byte[] saved = savedWithQueue0(d, true);
        // nothing used since: the restore raises no interrupt (and queue 1, never ready, is left alone)
        Recorder quiet = new Recorder();
        VirtioMmioTransport restored = new VirtioMmioTransport("recorder", memory, quiet);
        restored.restoreState(saved);
        assertEquals(1, quiet.activations);
        VirtioDevicesTest.Mmio r = new VirtioDevicesTest.Mmio(restored);
        assertEquals(0, r.r(INTERRUPT_STATUS));
        assertFalse(r.needsReset());

        // a chain the backend answers as it is told of the restore: one used-buffer interrupt
        d.addChain(Buffer.writable(d.allocate(8), 8));
        VirtioMmioTransport answering = new VirtioMmioTransport("recorder", memory, new Recorder());
        answering.restoreState(saved);
        assertNotNull(d.pollUsed());
        assertEquals(INT_USED_BUFFER, new VirtioDevicesTest.Mmio(answering).r(INTERRUPT_STATUS));
    }

    private static void awaitTrue(String what, java.util.function.BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + 10_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError(what + " within 10 s");
            }
            Thread.sleep(1);
        }
    }

    @Test
    void aDoorbellKickServesTheReadyQueuesAndInterruptsOnce() throws Exception {
        VirtioDoorbellTest.TestDoorbell bell = new VirtioDoorbellTest.TestDoorbell(0xd000_0050L, 4);
        transport.useDoorbells(() -> Optional.of(bell));
        assertTrue(m.negotiate(F_VERSION_1));
        TestDriver d = TestDriver.create(memory, 16, 0x10000);
        m.queue(0, d, 16);   // queue 1 stays unready
        m.driverOk();
        d.addChain(Buffer.writable(d.allocate(8), 8));
        bell.ring();
        TestDriver.Used[] used = new TestDriver.Used[1];
        awaitTrue("the kick is served", () -> (used[0] = d.pollUsed()) != null);
        assertEquals(INT_USED_BUFFER, m.r(INTERRUPT_STATUS), "read under the lock the kick was served under");
        assertFalse(m.needsReset());
        State s = state();
        assertEquals(1, s.kicksByDoorbell());
        assertEquals(0, s.errors());
        transport.close();
    }

    @Test
    void aDoorbellKickAfterTheDriverTookBackDriverOkNeedsReset() throws Exception {
        VirtioDoorbellTest.TestDoorbell bell = new VirtioDoorbellTest.TestDoorbell(0xd000_0050L, 4);
        transport.useDoorbells(() -> Optional.of(bell));
        assertTrue(m.negotiate(F_VERSION_1));
        TestDriver d = TestDriver.create(memory, 16, 0x10000);
        m.queue(0, d, 16);
        m.driverOk();
        m.w(STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);   // DRIVER_OK cleared without a reset
        d.addChain(Buffer.writable(d.allocate(8), 8));
        bell.ring();
        awaitTrue("DEVICE_NEEDS_RESET", m::needsReset);
        assertEquals("queue notify without DRIVER_OK", state().lastError());
        assertNull(d.pollUsed(), "nothing was served");
        transport.close();
    }
}
