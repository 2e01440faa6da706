package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.nxia.device.virtio.internal.mmio.VirtioDevicesTest.Context;
import org.nxia.device.virtio.internal.mmio.VirtioDevicesTest.Mmio;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.device.virtio.internal.vsock.VirtioVsockFactory;
import org.nxia.device.virtio.vsock.VsockEndpoint;
import org.nxia.device.virtio.vsock.VsockListener;
import org.nxia.device.virtio.vsock.VsockStream;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;

/**
 * A hostile guest and a host peer driving one real virtio-vsock device over
 * heap memory: random packet sequences (op, length, ports, credit, CIDs,
 * chain shapes, receive buffer sizes) from the guest, random accepts, writes
 * and closes from the host. Every packet the device puts in a receive buffer
 * is checked, and so are the device's bounds after every case.
 */
final class VsockStreamFuzzer implements AutoCloseable {

    static final long CID = 42;
    static final int HDR = 44;
    static final int QUEUE = 16;
    static final int RX_MAX = HDR + 4096;
    /** Host ports: 80 has a listener the host accepts from, 81 one it never accepts from, 82 nothing. */
    static final int ACCEPTED = 80;
    static final int IGNORED = 81;
    private static final int[] RX_SIZES = {HDR, HDR + 1, HDR + 20, 300, RX_MAX};

    final Context ctx = new Context();
    final Device device;
    final Mmio m;
    final VirtioMmioTransport transport;
    final TestDriver rx;
    final TestDriver tx;
    private final VsockListener accepting;
    private VsockListener ignoring;
    private final List<VsockStream> streams = new ArrayList<>();
    private final Map<Integer, Integer> hostWritten = new HashMap<>();
    private final long[] rxByHead = new long[QUEUE];
    private final int[] rxLengthByHead = new int[QUEUE];
    private final ArrayDeque<Long> freeRx = new ArrayDeque<>();
    /** Payload bytes the guest received per guest port: its fwd_cnt. */
    private final Map<Integer, Integer> fwdCnt = new HashMap<>();
    int rxSize = RX_MAX;
    /** A flooding guest: half its packets are REQUESTs from many ports, to push the connection and backlog bounds. */
    boolean flood;
    /** The ops of the packets received, when a replay wants to look at them. */
    final ArrayDeque<Integer> receivedOps = new ArrayDeque<>();
    boolean recordOps;

    long packetsSent;
    long packetsReceived;
    int maxConnections;
    long fdsPeak;
    int threadsPeak;
    long heapPeak;
    private int cases;

    VsockStreamFuzzer() {
        this(RX_MAX);
    }

    /** A device whose driver posts receive buffers of {@code rxSize} bytes (at most {@link #RX_MAX}). */
    VsockStreamFuzzer(int rxSize) {
        this.rxSize = rxSize;
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        m = new Mmio(ctx.windows.getLast());
        transport = (VirtioMmioTransport) m.dev;
        assertTrue(m.negotiate(VirtioDevicesTest.F_VERSION_1 | 1));
        rx = TestDriver.create(ctx.memory, QUEUE, 0x10000);
        tx = TestDriver.create(ctx.memory, QUEUE, 0x40000);
        TestDriver ev = TestDriver.create(ctx.memory, QUEUE, 0x70000);
        m.queue(0, rx, QUEUE);
        m.queue(1, tx, QUEUE);
        m.queue(2, ev, QUEUE);
        m.driverOk();
        for (int i = 0; i < QUEUE; i++) {
            freeRx.add(rx.allocate(RX_MAX));
        }
        transport.locked(this::postRx);
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        accepting = ((VsockEndpoint) device).listen(ACCEPTED);
        ignoring = ((VsockEndpoint) device).listen(IGNORED);
    }

    GuestMemory mem() {
        return ctx.memory;
    }

    private void postRx() {
        while (!freeRx.isEmpty()) {
            long buf = freeRx.poll();
            int head = rx.addChain(new Buffer(buf, rxSize, true));
            rxByHead[head] = buf;
            rxLengthByHead[head] = rxSize;
        }
    }

    /** One case: a burst of 1..8 packets from the guest, each followed by a host action, the answers checked. */
    void runCase(Random r) throws IOException, InterruptedException {
        int packets = 1 + r.nextInt(8);
        for (int i = 0; i < packets; i++) {
            if (r.nextInt(16) == 0) {
                rxSize = RX_SIZES[r.nextInt(RX_SIZES.length)];
            }
            randomPacket(r);
            hostAction(r);
            drain();
        }
        checkBounds();
    }

    void randomPacket(Random r) {
        // a few ports talk a lot; many more push the connection and backlog bounds
        int guestPort = 5000 + (r.nextInt(10) < 7 ? r.nextInt(6) : r.nextInt(64));
        int hostPort = switch (r.nextInt(8)) {
            case 0, 1, 2, 3 -> ACCEPTED;
            case 4, 5 -> IGNORED;
            case 6 -> 82;
            default -> r.nextInt();
        };
        if (flood && r.nextBoolean()) {
            guestPort = 5000 + r.nextInt(64);
            hostPort = r.nextBoolean() ? ACCEPTED : IGNORED;
        }
        int op = flood && r.nextBoolean() ? 1 : r.nextInt(20) == 0 ? r.nextInt(1 << 16) : switch (r.nextInt(20)) {
            case 0, 1, 2, 3 -> 1;            // REQUEST
            case 4 -> 2;                     // RESPONSE
            case 5, 6 -> 3;                  // RST
            case 7, 8 -> 4;                  // SHUTDOWN
            case 9, 10 -> 6;                 // CREDIT_UPDATE
            case 11 -> 7;                    // CREDIT_REQUEST
            default -> 5;                    // RW
        };
        int payload = switch (r.nextInt(10)) {
            case 0, 1, 2 -> 0;
            case 3, 4, 5 -> 1 + r.nextInt(64);
            case 6, 7 -> r.nextInt(8192);
            case 8 -> 64 * 1024 - r.nextInt(2);
            default -> r.nextInt(64 * 1024);
        };
        int len = switch (r.nextInt(12)) {
            case 0 -> payload + 1 + r.nextInt(100);   // more than the buffers hold
            case 1 -> r.nextInt();                    // anything
            default -> op == 5 ? payload : 0;
        };
        long srcCid = r.nextInt(40) == 0 ? r.nextLong() : CID;
        long dstCid = r.nextInt(40) == 0 ? r.nextInt(5) : 2;
        int type = r.nextInt(40) == 0 ? r.nextInt(4) : 1;
        int flags = r.nextInt(10) == 0 ? r.nextInt() : r.nextInt(4);
        int bufAlloc = switch (r.nextInt(10)) {
            case 0 -> 0;
            case 1 -> r.nextInt(4096);
            case 2 -> -1;
            default -> 256 * 1024;
        };
        int fwd = r.nextInt(20) == 0 ? r.nextInt() : fwdCnt.getOrDefault(guestPort, 0);
        send(srcCid, dstCid, type, op, flags, guestPort, hostPort, len, bufAlloc, fwd, payload, r.nextInt(4), r);
    }

    /** Writes a packet into the transmitq as a chain of {@code shape}: 0 one buffer, 1 header + payload, 2 split header, 3 with a trailing writable buffer. */
    void send(long srcCid, long dstCid, int type, int op, int flags, int srcPort, int dstPort, int len, int bufAlloc, int fwd,
              int payload, int shape, Random r) {
        tx.resetData();
        long hdr = tx.allocate(HDR + payload);
        VirtioVsockTest.header(mem(), hdr, srcCid, dstCid, type, op, flags, srcPort, dstPort, len, bufAlloc, fwd);
        if (payload > 0 && r != null) {
            mem().slice(hdr + HDR, payload).fill((byte) r.nextInt());
        }
        int cut = 1 + (r == null ? 20 : r.nextInt(HDR - 1));
        Buffer[] chain = switch (payload == 0 && shape == 1 ? 0 : shape) {
            case 1 -> new Buffer[] {new Buffer(hdr, HDR, false), new Buffer(hdr + HDR, payload, false)};
            case 2 -> new Buffer[] {new Buffer(hdr, cut, false), new Buffer(hdr + cut, HDR + payload - cut, false)};
            case 3 -> new Buffer[] {new Buffer(hdr, HDR + payload, false), new Buffer(tx.allocate(64), 64, true)};
            default -> new Buffer[] {new Buffer(hdr, HDR + payload, false)};
        };
        transport.locked(() -> tx.addChain(chain));
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 1);
        transport.locked(() -> assertNotNull(tx.pollUsed(), "the device returns every transmitq buffer"));
        packetsSent++;
    }

    void hostAction(Random r) throws IOException, InterruptedException {
        switch (r.nextInt(12)) {
            case 0, 1 -> {
                accept();
            }
            case 2, 3 -> {
                if (!streams.isEmpty()) {
                    write(streams.get(r.nextInt(streams.size())), 1 + r.nextInt(2048));
                }
            }
            case 4 -> {
                if (!streams.isEmpty()) {
                    streams.remove(r.nextInt(streams.size())).close();
                }
            }
            case 5 -> {
                if (r.nextInt(8) == 0) {
                    ignoring.close();
                    ignoring = ((VsockEndpoint) device).listen(IGNORED);
                }
            }
            default -> {
                // the host does nothing this time
            }
        }
    }

    /** Takes a waiting connection; a host peer keeps at most 32 streams, closing its oldest. */
    void accept() throws IOException, InterruptedException {
        VsockStream s = accepting.accept(Duration.ZERO);
        if (s != null) {
            streams.add(s);
            if (streams.size() > 32) {
                streams.removeFirst().close();
            }
        }
    }

    /** A connection waiting on port 80, taken without keeping it, or null. */
    VsockStream acceptNow() throws InterruptedException {
        return accepting.accept(Duration.ZERO);
    }

    VsockStream lastStream() {
        return streams.getLast();
    }

    /** Host bytes to a stream, at most 16 KiB per stream in all: a pipe and the inbox take that without blocking. */
    void write(VsockStream s, int n) throws IOException {
        int id = System.identityHashCode(s);
        int done = hostWritten.getOrDefault(id, 0);
        n = Math.min(n, 16 * 1024 - done);
        if (n <= 0 || !s.isOpen()) {
            return;
        }
        hostWritten.put(id, done + n);
        try {
            s.write(ByteBuffer.allocate(n));
        } catch (IOException e) {
            // the guest reset it: a host peer sees a broken pipe
        }
    }

    /** Takes every used receive buffer, checks the packet in it, and posts the buffer again. */
    void drain() {
        transport.locked(() -> {
            TestDriver.Used used;
            while ((used = rx.pollUsed()) != null) {
                long buf = rxByHead[used.id()];
                check(buf, used.length(), rxLengthByHead[used.id()]);
                freeRx.add(buf);
                packetsReceived++;
            }
            postRx();
        });
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        assertFalse(m.needsReset(), "well-formed rings and receive buffers of at least a header never need a reset");
    }

    private void check(long buf, long usedLength, int bufferLength) {
        GuestMemory g = mem();
        int len = g.readInt(buf + 24);
        int op = g.readShort(buf + 30);
        assertEquals(HDR + Integer.toUnsignedLong(len), usedLength, "used length = header + payload");
        assertTrue(usedLength <= bufferLength, "used " + usedLength + " of a " + bufferLength + "-byte buffer");
        assertEquals(2, g.readLong(buf), "src_cid");
        assertEquals(CID, g.readLong(buf + 8), "dst_cid");
        assertEquals(1, g.readShort(buf + 28), "type");
        assertTrue(op >= 1 && op <= 7, "op " + op);
        if (recordOps) {
            receivedOps.add(op);
        }
        if (op == 5) {
            assertTrue(len > 0, "no empty OP_RW");
            int port = g.readInt(buf + 20);
            fwdCnt.merge(port, len, Integer::sum);
        } else {
            assertEquals(0, len, "no payload on a control packet");
        }
    }

    int connections() {
        String s = device.state().toString();
        int at = s.indexOf("connections=") + "connections=".length();
        return Integer.parseInt(s.substring(at, s.indexOf(',', at)));
    }

    void checkBounds() throws IOException {
        int open = connections();
        maxConnections = Math.max(maxConnections, open);
        assertTrue(open <= 32, open + " connections");
        if (++cases % 100 == 0) {
            try (var fds = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/fd"))) {
                fdsPeak = Math.max(fdsPeak, fds.count());
            }
            threadsPeak = Math.max(threadsPeak, Thread.activeCount());
            heapPeak = Math.max(heapPeak, java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed());
        }
    }

    @Override
    public void close() throws IOException {
        for (VsockStream s : streams) {
            s.close();
        }
        accepting.close();
        ignoring.close();
        device.close();
    }
}
