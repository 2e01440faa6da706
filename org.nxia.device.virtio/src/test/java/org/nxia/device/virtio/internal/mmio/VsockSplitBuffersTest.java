package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.device.virtio.internal.vsock.VirtioVsockFactory;
import org.nxia.device.virtio.vsock.VsockEndpoint;
import org.nxia.device.virtio.vsock.VsockListener;
import org.nxia.device.virtio.vsock.VsockStream;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.spi.GuestMemory;

/**
 * virtio-vsock packets as a guest may lay them out: a header split anywhere
 * over several descriptors, payload sharing a descriptor with the header's
 * tail, receive buffers cut the same way, in RAM that does not start at 0;
 * and the SHUTDOWN flags one at a time, the config space byte by byte, and a
 * packet's length against the bytes its buffers hold. Every wait has a
 * deadline: a read or write the device never completes fails the test.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class VsockSplitBuffersTest {

    /** How long a host-side read or write may block before the test fails. */
    static final Duration DEADLINE = Duration.ofSeconds(5);

    static final long BASE = 0x8000_0000L;
    static final long CID = 0xa1b2_c3d4L;
    static final int HDR = 44;
    static final int REQUEST = 1, RESPONSE = 2, RST = 3, SHUTDOWN = 4, RW = 5;
    static final int HOST_PORT = 1234, GUEST_PORT = 5000;

    private final VirtioDevicesTest.Context ctx = new VirtioDevicesTest.Context(
            GuestMemory.of(BASE, MemorySegment.ofArray(new byte[1 << 20])), List.of());
    private Device device;
    private VirtioDevicesTest.Mmio m;
    private TestDriver rx;
    private TestDriver tx;
    /** Each posted receive chain's head, to the contiguous buffer its descriptors cut up. */
    private final Map<Integer, Long> rxBuffers = new HashMap<>();
    private static final int RX_BYTES = HDR + 256;
    /** Where the receive buffers are cut into descriptors: the header split at 10 and 44, data at 50. */
    private static final int[] RX_CUTS = {10, 30, 50};

    record Packet(long srcCid, long dstCid, int srcPort, int dstPort, int len, int op, int flags, byte[] data) {
    }

    private GuestMemory mem() {
        return ctx.memory;
    }

    private VirtioMmioTransport transport() {
        return (VirtioMmioTransport) m.dev;
    }

    private void start() {
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        m = new VirtioDevicesTest.Mmio(ctx.windows.getLast());
        assertTrue(m.negotiate(VirtioDevicesTest.F_VERSION_1 | 1));
        rx = TestDriver.create(mem(), 16, BASE + 0x10000);
        tx = TestDriver.create(mem(), 16, BASE + 0x40000);
        m.queue(0, rx, 16);
        m.queue(1, tx, 16);
        m.queue(2, TestDriver.create(mem(), 16, BASE + 0x70000), 16);
        m.driverOk();
        for (int i = 0; i < 4; i++) {   // 4 descriptors each: the 16 the queue has
            post(rx.allocate(RX_BYTES));
        }
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
    }

    @AfterEach
    void close() {
        if (device != null) {
            device.close();
        }
    }

    private void post(long buf) {
        transport().locked(() -> rxBuffers.put(rx.addChain(cut(buf, RX_BYTES, RX_CUTS, true)), buf));
    }

    /** Descriptors over [buf, buf + length) cut at {@code cuts}. */
    private static Buffer[] cut(long buf, int length, int[] cuts, boolean writable) {
        List<Buffer> parts = new ArrayList<>();
        int from = 0;
        for (int c : cuts) {
            if (c > from && c < length) {
                parts.add(new Buffer(buf + from, c - from, writable));
                from = c;
            }
        }
        parts.add(new Buffer(buf + from, length - from, writable));
        return parts.toArray(Buffer[]::new);
    }

    /** Sends a packet whose header says {@code len} and whose buffers hold the header and {@code data}, cut at {@code cuts}. */
    private void sendClaiming(int len, int op, int flags, byte[] data, int... cuts) {
        long buf = tx.allocate(HDR + data.length);
        VirtioVsockTest.header(mem(), buf, CID, 2, 1, op, flags, GUEST_PORT, HOST_PORT, len, 1 << 20, 0);
        mem().write(buf + HDR, data);
        transport().locked(() -> tx.addChain(cut(buf, HDR + data.length, cuts, false)));
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 1);
        transport().locked(() -> assertNotNull(tx.pollUsed()));
        tx.resetData();
    }

    private void send(int op, int flags, byte[] data, int... cuts) {
        sendClaiming(data.length, op, flags, data, cuts);
    }

    /** The next packet in a receive buffer, or null after {@code millis}. */
    private Packet recv(long millis) throws InterruptedException {
        long end = System.nanoTime() + millis * 1_000_000;
        while (true) {
            Packet[] got = new Packet[1];
            transport().locked(() -> {
                TestDriver.Used used = rx.pollUsed();
                if (used == null) {
                    return;
                }
                long buf = rxBuffers.remove(used.id());
                GuestMemory g = mem();
                int len = g.readInt(buf + 24);
                assertEquals(HDR + len, used.length());
                got[0] = new Packet(g.readLong(buf), g.readLong(buf + 8), g.readInt(buf + 16), g.readInt(buf + 20), len,
                        g.readShort(buf + 30), g.readInt(buf + 32), g.read(buf + HDR, len));
                g.write(buf, new byte[RX_BYTES]);
                rxBuffers.put(rx.addChain(cut(buf, RX_BYTES, RX_CUTS, true)), buf);
            });
            if (got[0] != null) {
                m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
                return got[0];
            }
            if (System.nanoTime() > end) {
                return null;
            }
            Thread.sleep(1);
        }
    }

    private Packet expect(int op) throws InterruptedException {
        Packet p = recv(5000);
        assertNotNull(p, "a packet with op " + op);
        assertEquals(op, p.op(), () -> "op of " + p);
        assertEquals(2, p.srcCid());
        assertEquals(CID, p.dstCid());
        assertEquals(HOST_PORT, p.srcPort());
        assertEquals(GUEST_PORT, p.dstPort());
        return p;
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    /** Reads {@code n} bytes, or fewer before the end of the stream; fails after {@link #DEADLINE}. */
    private static String read(VsockStream stream, int n) {
        return assertTimeoutPreemptively(DEADLINE, () -> {
            ByteBuffer b = ByteBuffer.allocate(n);
            while (b.hasRemaining() && stream.read(b) >= 0) {
                // until n bytes or the end of the stream
            }
            return new String(b.array(), 0, b.position(), StandardCharsets.US_ASCII);
        }, () -> "the host's read of " + n + " bytes did not return within " + DEADLINE);
    }

    /** One read into a 1-byte buffer: what it returns (-1 at the end of the stream); fails after {@link #DEADLINE}. */
    private static int readOne(VsockStream stream) {
        return assertTimeoutPreemptively(DEADLINE, () -> stream.read(ByteBuffer.allocate(1)),
                () -> "the host's read did not return within " + DEADLINE);
    }

    private static void write(VsockStream stream, String text) {
        assertTimeoutPreemptively(DEADLINE, () -> stream.write(ByteBuffer.wrap(ascii(text))),
                () -> "the host's write did not return within " + DEADLINE);
    }

    /**
     * Waits until every vsock I/O thread sleeps in its selector's native wait, so
     * what the guest does next happens while the device thread is idle: a change
     * that needs the I/O thread must then wake it.
     */
    static void awaitIoThreadIdle() throws InterruptedException {
        long end = System.nanoTime() + DEADLINE.toNanos();
        while (!ioThreadsIdle()) {
            assertTrue(System.nanoTime() - end < 0, "the vsock I/O thread did not go back to its select within " + DEADLINE);
            Thread.sleep(1);
        }
    }

    static boolean ioThreadsIdle() {
        boolean any = false;
        for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
            if (!e.getKey().getName().equals("nxia-vsock-io")) {
                continue;
            }
            StackTraceElement[] stack = e.getValue();
            boolean selecting = false;
            for (StackTraceElement frame : stack) {
                selecting |= frame.getMethodName().equals("doSelect");
            }
            if (stack.length == 0 || !stack[0].isNativeMethod() || !selecting) {
                return false;
            }
            any = true;
        }
        return any;
    }

    /** A guest connection to a Java listener, accepted; its header cut at 20. */
    private VsockStream connect(VsockListener listener) throws Exception {
        send(REQUEST, 0, new byte[0], 20);
        expect(RESPONSE);
        VsockStream stream = listener.accept(Duration.ofSeconds(5));
        assertNotNull(stream);
        return stream;
    }

    @Test
    void packetsCutAnywhereInRamAboveZeroArriveWhole() throws Exception {
        start();
        try (VsockListener listener = ((VsockEndpoint) device).listen(HOST_PORT)) {
            VsockStream stream = connect(listener);
            // header over three descriptors; the data starts in the header's last one and ends in two more
            send(RW, 0, ascii("hello, split world"), 7, 30, 50, 55);
            assertEquals("hello, split world", read(stream, 18));
            send(RW, 0, ascii("0123456789"), HDR);
            assertEquals("0123456789", read(stream, 10));

            String text = "the host's answer crosses the receive buffer's cuts";
            write(stream, text);
            Packet p = expect(RW);
            assertEquals(text.length(), p.len());
            assertEquals(text, new String(p.data(), StandardCharsets.US_ASCII));
        }
    }

    @Test
    void aLengthUpToTheBytesTheBuffersHoldIsTakenOneMoreResetsTheConnection() throws Exception {
        start();
        try (VsockListener listener = ((VsockEndpoint) device).listen(HOST_PORT)) {
            VsockStream stream = connect(listener);
            sendClaiming(3, RW, 0, ascii("abcd"), 30);   // len 3 of 4 bytes held: the first 3 go
            assertEquals("abc", read(stream, 3));
            sendClaiming(4, RW, 0, ascii("wxyz"), 30);
            assertEquals("wxyz", read(stream, 4));
            sendClaiming(5, RW, 0, ascii("wxyz"), 30);
            expect(RST);
            assertEquals(-1, readOne(stream), "the reset connection ends for the host");
        }
    }

    @Test
    void shutdownSendEndsTheHostsReadsAndKeepsTheOtherDirection() throws Exception {
        start();
        try (VsockListener listener = ((VsockEndpoint) device).listen(HOST_PORT)) {
            VsockStream stream = connect(listener);
            send(RW, 0, ascii("last"), 30);
            // The I/O thread asleep in its select, as it is when a guest shuts down an idle connection:
            // the host's end of the pipe it holds must still close now, not at its next wake-up.
            awaitIoThreadIdle();
            send(SHUTDOWN, 2, new byte[0], 30);   // SEND: the guest writes no more
            assertEquals("last", read(stream, 4));
            assertEquals(-1, readOne(stream), "then the host reads the end of the stream");
            write(stream, "still");
            assertEquals("still", new String(expect(RW).data(), StandardCharsets.US_ASCII), "the guest still receives");
            send(RW, 0, ascii("more"), 30);
            expect(RST);   // data after its own SHUTDOWN SEND: the guest broke the stream
        }
    }

    @Test
    void shutdownReceiveStopsDeliveryAndKeepsTheGuestsWrites() throws Exception {
        start();
        try (VsockListener listener = ((VsockEndpoint) device).listen(HOST_PORT)) {
            VsockStream stream = connect(listener);
            send(SHUTDOWN, 1, new byte[0], 30);   // RCV: the guest reads no more
            write(stream, "unread");
            assertNull(recv(300), "nothing is delivered to a guest that shut its receiving side");
            send(RW, 0, ascii("mine"), 30);
            assertEquals("mine", read(stream, 4), "the guest's writes still reach the host");
            send(SHUTDOWN, 2, new byte[0], 30);   // and now SEND too: both directions are done
            expect(RST);
        }
    }

    @Test
    void theConfigSpaceIsTheGuestCidByteByByte() {
        start();
        assertEquals(CID, m.dev.read(VirtioMmioTransport.CONFIG, 8));
        assertEquals(CID, m.dev.read(VirtioMmioTransport.CONFIG, 4));
        assertEquals(0L, m.dev.read(VirtioMmioTransport.CONFIG + 4, 4), "the high half of a 32-bit CID");
        assertEquals(0xb2c3L, m.dev.read(VirtioMmioTransport.CONFIG + 1, 2));
        assertEquals(0xa1b2L, m.dev.read(VirtioMmioTransport.CONFIG + 2, 2));
        assertEquals(0xd4L, m.dev.read(VirtioMmioTransport.CONFIG, 1));
        assertEquals(0xa1L, m.dev.read(VirtioMmioTransport.CONFIG + 3, 1));
        assertEquals(0xa1b2c3L, m.dev.read(VirtioMmioTransport.CONFIG + 1, 8), "from offset 1, what is left of guest_cid");
        assertEquals(0L, m.dev.read(VirtioMmioTransport.CONFIG + 7, 1));
        assertEquals(0L, m.dev.read(VirtioMmioTransport.CONFIG + 8, 4), "past guest_cid");
        assertEquals(0L, m.dev.read(VirtioMmioTransport.CONFIG, 0));
        assertEquals(0L, m.dev.read(VirtioMmioTransport.CONFIG, 9));
        assertArrayEquals(new long[] {0xd4, 0xc3, 0xb2, 0xa1, 0},
                new long[] {m.dev.read(0x100, 1), m.dev.read(0x101, 1), m.dev.read(0x102, 1), m.dev.read(0x103, 1), m.dev.read(0x104, 1)});
    }
}
