package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;

import org.junit.jupiter.api.Test;
import org.nxia.device.virtio.internal.queue.DescriptorChain;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.vmm.spi.GuestMemory;

/**
 * With EVENT_IDX a driver kicks only when its new index passes {@code avail_event}
 * ({@code vring_need_event}, as Linux's virtqueue_kick_prepare). The transport publishes it
 * after serving a kick and serves what came meanwhile; when that took chains and avail_event
 * was left behind them, the driver's next chains were never kicked (virtio-net's transmit
 * queue in the rig: avail.idx 53, taken 45, avail_event 44; issue 14's NetTest stalls).
 */
class VirtioEventIdxTest {

    GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[1 << 20]));
    TestDriver driver = TestDriver.create(memory, 16, 0x1000);
    long buffer = driver.allocate(64);
    int taken;
    /** Chains the "driver" adds while the device serves, as a guest on another vCPU does. */
    int meanwhile;

    record Sunk(int taken) {
    }

    /** Takes every available chain; on its first call the driver adds {@link #meanwhile} more. */
    final class Sink extends OneQueueTestBackend {
        @Override
        public void process(int q) {
            DescriptorChain c;
            while ((c = queue.next()) != null) {
                queue.pushUsed(c.head(), 0);
                taken++;
            }
            for (; meanwhile > 0; meanwhile--) {
                driver.addChain(Buffer.readable(buffer, 64));
            }
        }

        @Override
        public Record state() {
            return new Sunk(taken);
        }
    }

    @Test
    void chainsTakenAfterAKickLeaveAvailEventAtTheNextChainSoTheDriverKicksIt() {
        VirtioMmioTransport t = new VirtioMmioTransport("virtio-rng", memory, new Sink());
        VirtioDevicesTest.Mmio m = new VirtioDevicesTest.Mmio(t);
        assertEquals(true, m.negotiate((1L << 32) | SplitQueue.F_EVENT_IDX));
        m.queue(0, driver, 16);
        m.driverOk();

        driver.addChain(Buffer.readable(buffer, 64));
        meanwhile = 2;   // added while the device serves the kick, before it publishes avail_event
        t.write(0x050, 4, 0);   // QueueNotify
        assertEquals(3, taken, "the kicked chain and the two added meanwhile");
        assertEquals(driver.availIdx(), driver.availEvent(),
                "avail_event is the driver's next index: its next chain passes it, and it kicks");
        while (driver.pollUsed() != null) {
            // give the descriptors back
        }
        int old = driver.availIdx();
        driver.addChain(Buffer.readable(buffer, 64));
        int now = driver.availIdx();
        assertEquals(true, ((now - driver.availEvent() - 1) & 0xffff) < ((now - old) & 0xffff), "vring_need_event: the driver kicks");
    }
}
