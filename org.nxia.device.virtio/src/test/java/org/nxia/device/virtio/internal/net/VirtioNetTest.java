package org.nxia.device.virtio.internal.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.Arrays;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nxia.device.virtio.internal.mmio.VirtioDevicesTest;
import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.device.virtio.internal.queue.TestDriver.Used;
import org.nxia.device.virtio.internal.queue.VirtqueueException;
import org.nxia.vmm.spi.GuestMemory;

/** virtio-net's queues driven by a test driver on heap memory: what reaches the backend and the guest, byte for byte. */
class VirtioNetTest {

    static final byte[] MAC = {0x02, 0x4e, 0x58, 1, 2, 3};
    static final long F_MRG = 1L << VirtioNet.F_MRG_RXBUF;

    GuestMemory memory;
    TestDriver rxDriver;
    TestDriver txDriver;
    TxFrames tx;
    VirtioNet net;

    @BeforeEach
    void setUp() {
        memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[4 << 20]));
        rxDriver = TestDriver.create(memory, 16, 0x1000);
        txDriver = TestDriver.create(memory, 16, 0x200000);
        tx = new TxFrames(4);
        net = new VirtioNet(memory, MAC, tx);
    }

    void activate(long features) {
        net.activate(features, new SplitQueue[] {rxDriver.newQueue(0), txDriver.newQueue(0)});
        net.setLink(true);
    }

    static byte[] frame(int length) {
        byte[] f = new byte[length];
        for (int i = 0; i < length; i++) {
            f[i] = (byte) (i * 7 + 3);
        }
        return f;
    }

    @Test
    void offersMacStatusAndMergeableBuffersAndVersion1ThroughTheTransport() {
        VirtioMmioTransport t = new VirtioMmioTransport("virtio-net", memory, net);
        assertEquals(1, t.read(0x008, 4), "device ID");
        t.write(0x014, 4, 0);
        long low = t.read(0x010, 4);
        t.write(0x014, 4, 1);
        long high = t.read(0x010, 4);
        assertEquals(1L << VirtioNet.F_MAC | F_MRG | 1L << VirtioNet.F_STATUS,
                low & (1L << VirtioNet.F_MAC | F_MRG | 1L << VirtioNet.F_STATUS));
        assertEquals(1, high & 1, "VIRTIO_F_VERSION_1");
        for (int i = 0; i < 6; i++) {
            assertEquals(MAC[i] & 0xff, t.read(0x100 + i, 1), "mac[" + i + "]");
        }
        assertEquals(0, t.read(0x106, 2), "link down before the backend connects");
        int generation = (int) t.read(0x0fc, 4);
        net.setLink(true);
        t.configChanged();
        assertEquals(VirtioNet.S_LINK_UP, t.read(0x106, 2));
        assertEquals(0, t.read(0x060, 4), "no interrupt before DRIVER_OK: the driver reads the link as it sets up");
        assertTrue(t.read(0x0fc, 4) != generation, "a new configuration generation");
        driverSetsUp(t, 1L << 32 | 1L << VirtioNet.F_MAC | 1L << VirtioNet.F_STATUS | F_MRG);
        net.setLink(false);
        t.configChanged();
        assertEquals(2, t.read(0x060, 4) & 2, "after DRIVER_OK a change is a configuration-change interrupt");
    }

    /** A driver's setup through the transport's registers (virtio 1.2, 4.2.2): features, both queues, DRIVER_OK. */
    private void driverSetsUp(VirtioMmioTransport t, long features) {
        VirtioDevicesTest.Mmio m = new VirtioDevicesTest.Mmio(t);
        assertTrue(m.negotiate(features));
        TestDriver[] drivers = {rxDriver, txDriver};
        for (int q = 0; q < 2; q++) {
            m.queue(q, drivers[q], 16);
        }
        m.driverOk();
    }

    @Test
    void aRestoredDeviceKeepsTheMacTheDriverReadTellsItToRereadTheLinkAndReceivesOn() {
        VirtioMmioTransport t = new VirtioMmioTransport("virtio-net", memory, net);
        driverSetsUp(t, 1L << 32 | 1L << VirtioNet.F_MAC | 1L << VirtioNet.F_STATUS | F_MRG);
        net.setLink(true);
        long first = rxDriver.allocate(2000);
        rxDriver.addChain(Buffer.writable(first, 2000));
        assertTrue(net.offerFrame(frame(100)));
        t.locked(net::receive);
        assertNotNull(rxDriver.pollUsed());
        byte[] bytes = t.saveState();
        int generation = (int) t.read(0x0fc, 4);

        // another VM's id gives another MAC, and its passt has not connected yet
        VirtioNet fresh = new VirtioNet(memory, new byte[] {0x02, 0x4e, 0x58, 9, 9, 9}, new TxFrames(4));
        VirtioMmioTransport restored = new VirtioMmioTransport("virtio-net", memory, fresh);
        restored.restoreState(bytes);
        for (int i = 0; i < 6; i++) {
            assertEquals(MAC[i] & 0xff, restored.read(0x100 + i, 1), "mac[" + i + "] as the driver read it");
        }
        assertEquals(0, restored.read(0x106, 2), "the new backend's link, down");
        assertEquals(2, restored.read(0x060, 4) & 2, "a configuration-change interrupt: the driver rereads the status");
        assertEquals(generation + 1, (int) restored.read(0x0fc, 4));
        assertEquals(t.read(0x070, 4), restored.read(0x070, 4));

        fresh.setLink(true);
        long second = rxDriver.allocate(2000, (byte) 0xee);
        int head = rxDriver.addChain(Buffer.writable(second, 2000));
        assertTrue(fresh.offerFrame(frame(200)));
        restored.locked(fresh::receive);
        Used used = rxDriver.pollUsed();
        assertNotNull(used, "a frame after the restore lands in the buffer posted after it");
        assertEquals(head, used.id());
        assertEquals(12 + 200, used.length());
        assertArrayEquals(frame(200), memory.read(second + 12, 200));

        byte[] multicast = bytes.clone();
        multicast[multicast.length - 6] |= 1;
        VirtioMmioTransport refuses = new VirtioMmioTransport("virtio-net", memory, new VirtioNet(memory, MAC, new TxFrames(4)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> refuses.restoreState(multicast));
        assertTrue(e.getMessage().contains("is not a unicast address"), e.getMessage());
        assertEquals(0, refuses.read(0x070, 4), "left as created");
    }

    @Test
    void spreadsAFrameOverMergeableBuffersAndCountsThemInTheHeader() {
        activate(F_MRG);
        long[] bufs = new long[3];
        int[] heads = new int[3];
        for (int i = 0; i < 3; i++) {
            bufs[i] = rxDriver.allocate(1000, (byte) 0xee);
            heads[i] = rxDriver.addChain(Buffer.writable(bufs[i], 1000));
        }
        byte[] f = frame(2500);
        assertTrue(net.offerFrame(f));
        net.receive();
        int[] lengths = {1000, 1000, 512};
        ByteBuffer got = ByteBuffer.allocate(3000);
        for (int i = 0; i < 3; i++) {
            Used u = rxDriver.pollUsed();
            assertNotNull(u, "used entry " + i);
            assertEquals(heads[i], u.id());
            assertEquals(lengths[i], u.length());
            got.put(memory.read(bufs[i], lengths[i]));
        }
        assertNull(rxDriver.pollUsed());
        got.flip();
        byte[] hdr = new byte[12];
        got.get(hdr);
        assertEquals(3, (hdr[10] & 0xff) | (hdr[11] & 0xff) << 8, "num_buffers");
        assertArrayEquals(new byte[10], Arrays.copyOf(hdr, 10), "no offloads: the rest of the header is zero");
        byte[] data = new byte[2500];
        got.get(data);
        assertArrayEquals(f, data);
        assertEquals(0, net.rxWaiting());
    }

    @Test
    void aFrameWaitsUntilTheDriverGivesEnoughBuffers() {
        activate(F_MRG);
        for (int i = 0; i < 2; i++) {
            rxDriver.addChain(Buffer.writable(rxDriver.allocate(1000), 1000));
        }
        assertTrue(net.offerFrame(frame(2500)));
        net.receive();
        assertNull(rxDriver.pollUsed(), "two buffers cannot hold 2512 bytes: nothing is used");
        assertEquals(1, net.rxWaiting());
        rxDriver.addChain(Buffer.writable(rxDriver.allocate(1000), 1000));
        net.process(VirtioNet.RX);
        for (int i = 0; i < 3; i++) {
            assertNotNull(rxDriver.pollUsed(), "used entry " + i);
        }
        assertEquals(0, net.rxWaiting());
    }

    @Test
    void aFrameWaitingForBuffersAsksForTheKickOfTheNextOneWithEventIdx() {
        net.activate(F_MRG, new SplitQueue[] {rxDriver.newQueue(SplitQueue.F_EVENT_IDX), txDriver.newQueue(SplitQueue.F_EVENT_IDX)});
        net.setLink(true);
        for (int i = 0; i < 2; i++) {
            rxDriver.addChain(Buffer.writable(rxDriver.allocate(1000), 1000));
        }
        net.offerFrame(frame(2500));
        net.receive();
        assertNull(rxDriver.pollUsed());
        // the driver kicks when its avail idx passes avail_event: it must be 2 (its index), not 0 (the chains given back)
        assertEquals(2, rxDriver.availEvent());
    }

    @Test
    void withoutMergeableBuffersAFrameLargerThanOneChainIsDroppedAndTheChainKept() {
        activate(0);
        long buf = rxDriver.allocate(1526);
        int head = rxDriver.addChain(Buffer.writable(buf, 1526));
        assertTrue(net.offerFrame(frame(2000)));
        assertTrue(net.offerFrame(frame(1514)));
        net.receive();
        Used u = rxDriver.pollUsed();
        assertNotNull(u);
        assertEquals(head, u.id());
        assertEquals(12 + 1514, u.length(), "the second frame, in the chain the first could not use");
        assertArrayEquals(frame(1514), memory.read(buf + 12, 1514));
        assertTrue(net.state().toString().contains("rxDropped=1"), net.state().toString());
    }

    @Test
    void aReceiveChainWithoutRoomForTheHeaderIsReturnedEmpty() {
        activate(F_MRG);
        int head = rxDriver.addChain(Buffer.writable(rxDriver.allocate(8), 8));
        net.offerFrame(frame(100));
        net.receive();
        Used u = rxDriver.pollUsed();
        assertEquals(head, u.id());
        assertEquals(0, u.length());
    }

    @Test
    void sendsAChainedFrameWithoutItsHeaderBehindALengthWord() throws Exception {
        activate(F_MRG);
        byte[] f = frame(3000);
        long hdr = txDriver.allocate(12, (byte) 0);
        long a = txDriver.allocate(1000);
        long b = txDriver.allocate(2000);
        memory.write(a, Arrays.copyOfRange(f, 0, 1000));
        memory.write(b, Arrays.copyOfRange(f, 1000, 3000));
        int head = txDriver.addChain(Buffer.readable(hdr, 12), Buffer.readable(a, 1000), Buffer.readable(b, 2000));
        net.process(VirtioNet.TX);
        ByteBuffer sent = tx.take(0);
        assertNotNull(sent);
        assertEquals(3000, sent.getInt());
        byte[] data = new byte[sent.remaining()];
        sent.get(data);
        assertArrayEquals(f, data);
        Used u = txDriver.pollUsed();
        assertEquals(head, u.id());
        assertEquals(0, u.length());
    }

    /** The frame that tells a new passt where the guest is: an ARP probe from the configured MAC, then from the guest's last unicast source. */
    @Test
    void theAnnouncementComesFromTheMacTheGuestLastSentFrom() throws Exception {
        activate(F_MRG);
        byte[] a = net.announcement();
        assertEquals(VirtioNet.ANNOUNCEMENT, a.length);
        String mac = java.util.HexFormat.of().formatHex(MAC);
        // broadcast, ARP; Ethernet/IPv4 request from MAC, sender 0.0.0.0, for 0.0.0.0
        assertEquals("ffffffffffff" + mac + "0806" + "0001080006040001" + mac + "00000000" + "000000000000" + "00000000",
                java.util.HexFormat.of().formatHex(a, 0, 42));
        byte[] moved = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
        for (byte[] source : new byte[][] {moved, {0x03, 1, 1, 1, 1, 1}}) {   // the second is multicast: not an address
            byte[] f = frame(60);
            System.arraycopy(source, 0, f, 6, 6);
            long at = txDriver.allocate(12 + 60);
            memory.write(at + 12, f);
            txDriver.addChain(Buffer.readable(at, 12 + 60));
            net.process(VirtioNet.TX);
            tx.release(tx.take(0));
        }
        byte[] b = net.announcement();
        assertEquals(java.util.HexFormat.of().formatHex(moved), java.util.HexFormat.of().formatHex(b, 6, 12));
        // passt's answer (arp.c: op 2, its MAC as sender, the target's and sender's IPs swapped, to the announcer)
        byte[] answer = java.util.Arrays.copyOf(b, 42);
        System.arraycopy(moved, 0, answer, 0, 6);
        answer[21] = 2;
        System.arraycopy(moved, 0, answer, 32, 6);
        assertTrue(VirtioNet.answers(b, answer));
        assertFalse(VirtioNet.answers(a, answer), "an answer to another MAC's announcement");
        answer[41] = 1;
        assertFalse(VirtioNet.answers(b, answer), "an answer about another address");
    }

    @Test
    void theHeaderMaySpanBuffersAndShareOneWithTheFrame() throws Exception {
        activate(F_MRG);
        byte[] f = frame(60);
        long a = txDriver.allocate(5);
        long b = txDriver.allocate(67);
        memory.write(b + 7, f);
        txDriver.addChain(Buffer.readable(a, 5), Buffer.readable(b, 67));
        net.process(VirtioNet.TX);
        ByteBuffer sent = tx.take(0);
        assertEquals(60, sent.getInt());
        byte[] data = new byte[60];
        sent.get(data);
        assertArrayEquals(f, data);
    }

    @Test
    void dropsOversizedTinyAndWritableTransmitChains() throws Exception {
        activate(F_MRG);
        long big = txDriver.allocate(12 + VirtioNet.MAX_FRAME + 1);
        txDriver.addChain(Buffer.readable(big, 12 + VirtioNet.MAX_FRAME + 1));
        txDriver.addChain(Buffer.readable(txDriver.allocate(20), 20));
        long w = txDriver.allocate(100);
        txDriver.addChain(Buffer.readable(w, 80), Buffer.writable(w + 80, 20));
        net.process(VirtioNet.TX);
        assertNull(tx.take(0), "nothing reached the backend");
        for (int i = 0; i < 3; i++) {
            assertEquals(0, txDriver.pollUsed().length(), "chain " + i + " returned");
        }
        assertTrue(net.state().toString().contains("txDropped=3"), net.state().toString());
    }

    @Test
    void theLargestFrameGoesThrough() throws Exception {
        activate(F_MRG);
        long big = txDriver.allocate(12 + VirtioNet.MAX_FRAME);
        txDriver.addChain(Buffer.readable(big, 12 + VirtioNet.MAX_FRAME));
        net.process(VirtioNet.TX);
        assertEquals(VirtioNet.MAX_FRAME, tx.take(0).getInt());
    }

    @Test
    void aTransmitBufferOutsideGuestMemoryBreaksTheQueue() {
        activate(F_MRG);
        txDriver.addChain(Buffer.readable(memory.size() - 10, 100));
        assertThrows(VirtqueueException.class, () -> net.process(VirtioNet.TX));
        assertNull(txDriver.pollUsed());
    }

    @Test
    void aDescriptorLoopBreaksTheQueueInsteadOfSpinning() {
        activate(F_MRG);
        long a = txDriver.allocate(64);
        int head = txDriver.writeChain(Buffer.readable(a, 32), Buffer.readable(a + 32, 32));
        // the second descriptor points back at the head: a cycle
        int second = (head + 1) % 16;
        txDriver.writeDescriptor(head, a, 32, SplitQueue.VIRTQ_DESC_F_NEXT, second);
        txDriver.writeDescriptor(second, a + 32, 32, SplitQueue.VIRTQ_DESC_F_NEXT, head);
        txDriver.publish(head);
        assertThrows(VirtqueueException.class, () -> net.process(VirtioNet.TX));
    }

    @Test
    void transmitWaitsForABufferWhenTheBackendIsBehind() throws Exception {
        tx = new TxFrames(1);
        net = new VirtioNet(memory, MAC, tx);
        activate(F_MRG);
        for (int i = 0; i < 2; i++) {
            long a = txDriver.allocate(12 + 100);
            txDriver.addChain(Buffer.readable(a, 112));
        }
        net.process(VirtioNet.TX);
        assertNotNull(txDriver.pollUsed());
        assertNull(txDriver.pollUsed(), "the second chain waits: the one buffer is taken");
        ByteBuffer first = tx.take(0);
        tx.release(first);
        net.process(VirtioNet.TX);
        assertNotNull(txDriver.pollUsed(), "sent once the writer freed the buffer");
        assertNotNull(tx.take(0));
    }

    /**
     * The writer resumes transmission without a kick; with EVENT_IDX the driver kicks only past
     * avail_event, so the chains taken then must move it. It stayed behind: in the rig the guest's
     * ACKs sat in the transmit ring unkicked and passt reset the connections (issue 14).
     */
    @Test
    void chainsSentWhenTheWriterResumesLeaveTheDriverAskedToKick() throws Exception {
        tx = new TxFrames(1);
        net = new VirtioNet(memory, MAC, tx);
        net.activate(F_MRG, new SplitQueue[] {rxDriver.newQueue(org.nxia.device.virtio.internal.queue.SplitQueue.F_EVENT_IDX),
                txDriver.newQueue(org.nxia.device.virtio.internal.queue.SplitQueue.F_EVENT_IDX)});
        net.setLink(true);
        for (int i = 0; i < 3; i++) {
            long a = txDriver.allocate(12 + 100);
            txDriver.addChain(Buffer.readable(a, 112));
        }
        net.process(VirtioNet.TX);   // one buffer: one sent, two wait for the writer
        for (int i = 0; i < 2; i++) {
            tx.release(tx.take(0));
            net.process(VirtioNet.TX);   // as Passt calls it when txWaiting()
        }
        tx.release(tx.take(0));
        int old = txDriver.availIdx();
        assertEquals(old, txDriver.availEvent(), "avail_event follows the chains taken");
        txDriver.addChain(Buffer.readable(txDriver.allocate(112), 112));
        int now = txDriver.availIdx();
        assertTrue(((now - txDriver.availEvent() - 1) & 0xffff) < ((now - old) & 0xffff), "vring_need_event: the driver kicks its next chain");
    }

    @Test
    void transmitWhileTheLinkIsDownDropsTheFrame() throws Exception {
        activate(F_MRG);
        net.setLink(false);
        txDriver.addChain(Buffer.readable(txDriver.allocate(112), 112));
        net.process(VirtioNet.TX);
        assertEquals(0, txDriver.pollUsed().length());
        assertNull(tx.take(0));
        assertFalse(net.linkUp());
    }
}
