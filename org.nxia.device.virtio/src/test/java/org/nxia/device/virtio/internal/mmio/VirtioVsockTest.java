package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.ConnectException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
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

/** virtio-vsock driven packet by packet from a test driver on heap memory (no KVM), with real host sockets and pipes. */
class VirtioVsockTest {

    /** Writes a virtio-vsock packet header (virtio 1.2, 5.10.6) at {@code hdr}: every guest-side test's one writer. */
    static void header(GuestMemory m, long hdr, long srcCid, long dstCid, int type, int op, int flags, int srcPort, int dstPort,
                       int len, int bufAlloc, int fwdCnt) {
        m.writeLong(hdr, srcCid);
        m.writeLong(hdr + 8, dstCid);
        m.writeInt(hdr + 16, srcPort);
        m.writeInt(hdr + 20, dstPort);
        m.writeInt(hdr + 24, len);
        m.writeShort(hdr + 28, (short) type);
        m.writeShort(hdr + 30, (short) op);
        m.writeInt(hdr + 32, flags);
        m.writeInt(hdr + 36, bufAlloc);
        m.writeInt(hdr + 40, fwdCnt);
    }

    static final long F_VERSION_1 = 1L << 32;
    static final int HDR = 44;
    static final int REQUEST = 1, RESPONSE = 2, RST = 3, SHUTDOWN = 4, RW = 5, CREDIT_UPDATE = 6, CREDIT_REQUEST = 7;
    static final long CID = 42;

    record Packet(long srcCid, long dstCid, int srcPort, int dstPort, int len, int type, int op, int flags,
                  int bufAlloc, int fwdCnt, byte[] data) {
        String text() {
            return new String(data, StandardCharsets.US_ASCII);
        }
    }

    /** The guest's side: three queues, receive buffers posted, packets sent and polled. */
    static final class Guest {
        final Context ctx;
        final Mmio m;
        final VirtioMmioTransport transport;
        final TestDriver rx;
        final TestDriver tx;
        /** The event queue: no buffers posted unless a test posts them. */
        final TestDriver ev;
        final Map<Integer, Long> rxBuffers = new HashMap<>();
        final int rxSize;
        long payload;
        int bufAlloc = 1 << 20;
        int fwdCnt;

        Guest(Context ctx, int rxCount, int rxSize) {
            this.ctx = ctx;
            this.m = new Mmio(ctx.windows.getLast());
            this.transport = (VirtioMmioTransport) m.dev;
            this.rxSize = rxSize;
            assertTrue(m.negotiate(F_VERSION_1 | 1));
            rx = TestDriver.create(ctx.memory, 16, 0x10000);
            tx = TestDriver.create(ctx.memory, 16, 0x40000);
            ev = TestDriver.create(ctx.memory, 16, 0x70000);
            m.queue(0, rx, 16);
            m.queue(1, tx, 16);
            m.queue(2, ev, 16);
            m.driverOk();
            payload = tx.allocate(64 * 1024);
            for (int i = 0; i < rxCount; i++) {
                long buf = rx.allocate(rxSize);
                transport.locked(() -> rxBuffers.put(rx.addChain(new Buffer(buf, rxSize, true)), buf));
            }
            m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        }

        /** The same driver, its rings and buffers, now on the newest device's window: a VM restored from a snapshot. */
        Guest(Guest before) {
            this.ctx = before.ctx;
            this.m = new Mmio(ctx.windows.getLast());
            this.transport = (VirtioMmioTransport) m.dev;
            this.rxSize = before.rxSize;
            this.rx = before.rx;
            this.tx = before.tx;
            this.ev = before.ev;
            this.rxBuffers.putAll(before.rxBuffers);
            this.payload = before.payload;
            this.bufAlloc = before.bufAlloc;
            this.fwdCnt = before.fwdCnt;
        }

        GuestMemory mem() {
            return ctx.memory;
        }

        void send(int op, int srcPort, int dstPort, byte[] data) {
            send(CID, 2, 1, op, 0, srcPort, dstPort, data, data.length);
        }

        void send(long srcCid, long dstCid, int type, int op, int flags, int srcPort, int dstPort, byte[] data, int len) {
            long hdr = tx.allocate(HDR);
            header(mem(), hdr, srcCid, dstCid, type, op, flags, srcPort, dstPort, len, bufAlloc, fwdCnt);
            transport.locked(() -> {
                if (data.length > 0) {
                    mem().write(payload, data);
                    tx.addChain(new Buffer(hdr, HDR, false), new Buffer(payload, data.length, false));
                } else {
                    tx.addChain(new Buffer(hdr, HDR, false));
                }
            });
            m.w(VirtioMmioTransport.QUEUE_NOTIFY, 1);
            transport.locked(() -> assertNotNull(tx.pollUsed(), "the device returns every transmitq buffer"));
            tx.resetData();
            payload = tx.allocate(64 * 1024);
        }

        /** The next packet the device put in a receive buffer (the buffer is posted again), or null after {@code millis}. */
        Packet recv(long millis) throws InterruptedException {
            long end = System.nanoTime() + millis * 1_000_000;
            while (true) {
                Packet[] got = new Packet[1];
                transport.locked(() -> {
                    TestDriver.Used used = rx.pollUsed();
                    if (used == null) {
                        return;
                    }
                    long buf = rxBuffers.remove(used.id());
                    GuestMemory g = mem();
                    int len = g.readInt(buf + 24);
                    assertEquals(HDR + len, used.length(), "used length = header + payload");
                    got[0] = new Packet(g.readLong(buf), g.readLong(buf + 8), g.readInt(buf + 16), g.readInt(buf + 20), len,
                            g.readShort(buf + 28), g.readShort(buf + 30), g.readInt(buf + 32), g.readInt(buf + 36),
                            g.readInt(buf + 40), g.read(buf + HDR, len));
                    rxBuffers.put(rx.addChain(new Buffer(buf, rxSize, true)), buf);
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

        Packet expect(int op) throws InterruptedException {
            Packet p = recv(5000);
            assertNotNull(p, "a packet with op " + op + " arrives");
            assertEquals(op, p.op(), "op of " + p);
            assertEquals(2, p.srcCid());
            assertEquals(CID, p.dstCid());
            assertEquals(1, p.type());
            return p;
        }
    }

    private final Context ctx = new Context();
    private Device device;

    private Guest guest(String params) {
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID + params), ctx);
        return new Guest(ctx, 8, HDR + 4096);
    }

    @AfterEach
    void close() {
        if (device != null) {
            device.close();
        }
    }

    @Test
    void identifiesAsVsockWithItsCid() {
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=0x1234567"), ctx);
        Mmio m = new Mmio(ctx.windows.getLast());
        assertEquals(19, m.r(VirtioMmioTransport.DEVICE_ID));
        assertEquals(0x1234567, m.dev.read(0x100, 8));
        assertEquals(0x1234567, m.r(0x100));
        assertEquals(0, m.r(0x104));
        m.w(VirtioMmioTransport.DEVICE_FEATURES_SEL, 0);
        assertEquals(1, m.r(VirtioMmioTransport.DEVICE_FEATURES) & 1, "VIRTIO_VSOCK_F_STREAM offered");
        try (Device plain = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock"), ctx)) {
            assertEquals(3, ((VsockEndpoint) plain).guestCid());
        }
        assertThrows(IllegalArgumentException.class, () -> new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=2"), ctx));
        assertThrows(IllegalArgumentException.class, () -> new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:uds=/no/such/dir/v.sock"), ctx));
    }

    @Test
    void guestConnectsToAJavaListenerAndTalksBothWays() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = ((VsockEndpoint) device).listen(1234)) {
            g.send(REQUEST, 5000, 1234, new byte[0]);
            Packet response = g.expect(RESPONSE);
            assertEquals(1234, response.srcPort());
            assertEquals(5000, response.dstPort());
            VsockStream stream = listener.accept(Duration.ofSeconds(5));
            assertNotNull(stream);
            assertEquals(5000, stream.guestPort());

            g.send(RW, 5000, 1234, "hello".getBytes(StandardCharsets.US_ASCII));
            assertEquals("hello", readString(stream, 5));

            stream.write(ByteBuffer.wrap("world".getBytes(StandardCharsets.US_ASCII)));
            Packet data = g.expect(RW);
            assertEquals("world", data.text());

            stream.shutdownOutput();
            assertEquals(2, g.expect(SHUTDOWN).flags() & 2, "the host's end of stream is SHUTDOWN with SEND");
            g.send(SHUTDOWN, 5000, 1234, new byte[0]);   // flags 0: nothing
            g.send(CID, 2, 1, SHUTDOWN, 3, 5000, 1234, new byte[0], 0);
            g.expect(RST);
            assertEquals(-1, stream.read(ByteBuffer.allocate(8)), "the guest's shutdown ends the host's reads");
        }
    }

    @Test
    void guestReachesAUnixSocketAndAHostClientReachesTheGuest(@TempDir Path dir) throws Exception {
        Path uds = dir.resolve("v.sock");
        try (ServerSocketChannel echo = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            echo.bind(UnixDomainSocketAddress.of(dir.resolve("v.sock_6000")));
            Thread server = Thread.ofPlatform().daemon().start(() -> {
                try (SocketChannel s = echo.accept()) {
                    ByteBuffer b = ByteBuffer.allocate(4096);
                    while (s.read(b) >= 0) {
                        b.flip();
                        s.write(b);
                        b.clear();
                    }
                } catch (IOException ignored) {
                    // the test ends the connection
                }
            });
            Guest g = guest(",uds=" + uds);
            g.send(REQUEST, 5001, 6000, new byte[0]);
            g.expect(RESPONSE);
            g.send(RW, 5001, 6000, "ping".getBytes(StandardCharsets.US_ASCII));
            assertEquals("ping", g.expect(RW).text(), "the host's echo server answered through the device");

            g.send(REQUEST, 5002, 6001, new byte[0]);
            assertEquals(5002, g.expect(RST).dstPort(), "no socket for port 6001: refused");

            try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(uds))) {
                client.write(ByteBuffer.wrap("CONNECT 7000\n".getBytes(StandardCharsets.US_ASCII)));
                Packet request = g.expect(REQUEST);
                assertEquals(7000, request.dstPort());
                g.send(RESPONSE, 7000, request.srcPort(), new byte[0]);
                assertEquals("OK " + Integer.toUnsignedString(request.srcPort()) + "\n", readLine(client));
                client.write(ByteBuffer.wrap("abc".getBytes(StandardCharsets.US_ASCII)));
                assertEquals("abc", g.expect(RW).text());
                g.send(RW, 7000, request.srcPort(), "xyz".getBytes(StandardCharsets.US_ASCII));
                assertEquals("xyz", readString(client, 3));
            }
            g.send(RST, 5001, 6000, new byte[0]);
            server.join(5000);
        }
    }

    @Test
    void aHostClientsConnectInterruptsTheDriver(@TempDir Path dir) throws Exception {
        Path uds = dir.resolve("v.sock");
        Guest g = guest(",uds=" + uds);
        g.m.w(VirtioMmioTransport.INTERRUPT_ACK, g.m.r(VirtioMmioTransport.INTERRUPT_STATUS));
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(uds))) {
            client.write(ByteBuffer.wrap("CONNECT 1024\n".getBytes(StandardCharsets.US_ASCII)));
            // a Linux driver looks at its receive queue only when interrupted: wait for that before looking
            long end = System.nanoTime() + 5_000_000_000L;
            while ((g.m.r(VirtioMmioTransport.INTERRUPT_STATUS) & VirtioMmioTransport.INT_USED_BUFFER) == 0) {
                assertTrue(System.nanoTime() < end, "no used-buffer interrupt for the REQUEST");
                Thread.sleep(10);
            }
            assertEquals(1024, g.expect(REQUEST).dstPort());
        }
    }

    @Test
    void hostDataWaitsForTheGuestsCreditAndAsksForMore() throws Exception {
        Guest g = guest("");
        VsockEndpoint host = (VsockEndpoint) device;
        CompletableFuture<VsockStream> connecting = CompletableFuture.supplyAsync(() -> {
            try {
                return host.connect(9, Duration.ofSeconds(5));
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        });
        Packet request = g.expect(REQUEST);
        assertEquals(9, request.dstPort());
        g.bufAlloc = 100;
        g.send(RESPONSE, 9, request.srcPort(), new byte[0]);
        VsockStream stream = connecting.get();
        stream.write(ByteBuffer.wrap(new byte[300]));
        int got = 0;
        Packet p;
        while ((p = g.recv(300)) != null && p.op() == RW) {
            got += p.len();
        }
        assertEquals(100, got, "no more than the guest's buf_alloc before it forwards anything");
        assertNotNull(p);
        assertEquals(CREDIT_REQUEST, p.op());
        g.fwdCnt = 100;
        g.send(CREDIT_UPDATE, 9, request.srcPort(), new byte[0]);
        assertEquals(100, g.expect(RW).len());
        g.expect(CREDIT_REQUEST);
        g.send(CREDIT_REQUEST, 9, request.srcPort(), new byte[0]);
        assertEquals(256 * 1024, g.expect(CREDIT_UPDATE).bufAlloc());
        stream.close();
    }

    @Test
    void theGuestIsAskedForReceiveNotifiesOnlyWhilePacketsWait() throws Exception {
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        Guest g = new Guest(ctx, 1, HDR + 4096);
        assertEquals(1, g.rx.usedFlags(), "nothing waits: VIRTQ_USED_F_NO_NOTIFY");
        g.send(REQUEST, 5000, 80, new byte[0]);
        g.send(REQUEST, 5001, 80, new byte[0]);
        g.transport.locked(() -> assertEquals(0, g.rx.usedFlags(), "a second RST waits for a buffer: notify me"));
        assertEquals(5000, g.expect(RST).dstPort());
        assertEquals(5001, g.expect(RST).dstPort());
        g.transport.locked(() -> assertEquals(1, g.rx.usedFlags()));
    }

    @Test
    void hostConnectionsTheGuestRefusesEndCleanly(@TempDir Path dir) throws Exception {
        Path uds = dir.resolve("v.sock");
        Guest g = guest(",uds=" + uds);
        VsockEndpoint host = (VsockEndpoint) device;
        CompletableFuture<Throwable> refused = CompletableFuture.supplyAsync(() -> {
            try {
                host.connect(22, Duration.ofSeconds(5)).close();
                return null;
            } catch (IOException e) {
                return e;
            }
        });
        Packet request = g.expect(REQUEST);
        g.send(RST, 22, request.srcPort(), new byte[0]);
        assertTrue(refused.get() instanceof ConnectException, "the guest's RST is a ConnectException: " + refused.get());

        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(uds))) {
            client.write(ByteBuffer.wrap("CONNECT 23\n".getBytes(StandardCharsets.US_ASCII)));
            Packet r = g.expect(REQUEST);
            g.send(RST, 23, r.srcPort(), new byte[0]);
            assertEquals(-1, client.read(ByteBuffer.allocate(8)), "refused: the client's socket is closed without OK");
        }
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(uds))) {
            client.write(ByteBuffer.wrap("HELLO\n".getBytes(StandardCharsets.US_ASCII)));
            assertEquals(-1, client.read(ByteBuffer.allocate(8)), "not a CONNECT line: closed");
            assertNull(g.recv(100), "and the guest saw nothing");
        }
    }

    @Test
    void guestThatConnectsToNothingOrIgnoresItsCreditIsReset() throws Exception {
        Guest g = guest("");
        g.send(REQUEST, 5000, 80, new byte[0]);
        g.expect(RST);
        try (VsockListener listener = ((VsockEndpoint) device).listen(80)) {
            g.send(REQUEST, 5000, 80, new byte[0]);
            g.expect(RESPONSE);
            VsockStream stream = listener.accept(Duration.ofSeconds(5));   // never read: the guest must stop at 256 KiB
            byte[] chunk = new byte[64 * 1024];
            for (int i = 0; i < 7; i++) {
                g.send(RW, 5000, 80, chunk);
            }
            Packet p = g.recv(2000);
            while (p != null && p.op() == CREDIT_UPDATE) {
                p = g.recv(2000);
            }
            assertNotNull(p);
            assertEquals(RST, p.op(), "7 x 64 KiB unread is past the host's 256 KiB credit (plus a pipe)");
            stream.close();
        }
    }

    @Test
    void hostilePacketsAreDroppedOrResetAndTheDeviceKeepsServing() throws Exception {
        Guest g = guest("");
        // shorter than a header: dropped, nothing to answer
        long shortHdr = g.tx.allocate(20);
        g.transport.locked(() -> g.tx.addChain(new Buffer(shortHdr, 20, false)));
        g.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 1);
        g.transport.locked(() -> assertNotNull(g.tx.pollUsed()));
        // a spoofed source CID: dropped
        g.send(7, 2, 1, REQUEST, 0, 5000, 80, new byte[0], 0);
        assertNull(g.recv(100));
        // wrong destination CID, wrong type, unknown op, a length the buffers do not hold, payload on a control op
        g.send(CID, 3, 1, REQUEST, 0, 5001, 80, new byte[0], 0);
        assertEquals(5001, g.expect(RST).dstPort());
        g.send(CID, 2, 2, REQUEST, 0, 5002, 80, new byte[0], 0);
        assertEquals(5002, g.expect(RST).dstPort());
        g.send(CID, 2, 1, 99, 0, 5003, 80, new byte[0], 0);
        assertEquals(5003, g.expect(RST).dstPort());
        g.send(CID, 2, 1, RW, 0, 5004, 80, new byte[4], 5000);
        assertEquals(5004, g.expect(RST).dstPort());
        g.send(CID, 2, 1, REQUEST, 0, 5005, 80, new byte[4], 4);
        assertEquals(5005, g.expect(RST).dstPort());
        // data, shutdown, credit request on a connection that does not exist
        g.send(RW, 5006, 80, new byte[8]);
        assertEquals(5006, g.expect(RST).dstPort());
        g.send(CREDIT_REQUEST, 5007, 80, new byte[0]);
        assertEquals(5007, g.expect(RST).dstPort());
        // an RST for nothing is not answered
        g.send(RST, 5008, 80, new byte[0]);
        assertNull(g.recv(100));
        assertFalse(g.m.needsReset());
        String state = device.state().toString();
        assertTrue(state.contains("dropped=7"), state);

        // a receive buffer that cannot hold a header is a driver error
        long tiny = g.rx.allocate(16);
        g.transport.locked(() -> {
            while (g.rx.pollUsed() != null) {
                // drop what is pending
            }
        });
        Guest small = new Guest(ctx, 0, 16);
        small.transport.locked(() -> small.rx.addChain(new Buffer(tiny, 16, true)));
        small.send(REQUEST, 5009, 80, new byte[0]);
        small.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        assertTrue(small.m.needsReset(), "a 16-byte receive buffer needs a reset");
        // after a reset it works again
        Guest again = new Guest(ctx, 8, HDR + 4096);
        again.send(REQUEST, 5010, 80, new byte[0]);
        assertEquals(5010, again.expect(RST).dstPort());
        assertFalse(again.m.needsReset());
    }

    /** The next used element of {@code d}, polled under the transport's lock (the I/O thread also pushes). */
    private static TestDriver.Used poll(Guest g, TestDriver d) {
        TestDriver.Used[] used = new TestDriver.Used[1];
        g.transport.locked(() -> used[0] = d.pollUsed());
        return used[0];
    }

    @Test
    void aRestoredDeviceSendsTheTransportResetEventDropsTheConnectionsAndKeepsServing() throws Exception {
        Guest g = guest("");
        long event = g.ev.allocate(8, (byte) 0x5a);
        byte[] bytes;
        List<Integer> registers;
        List<Integer> ready;
        try (VsockListener listener = ((VsockEndpoint) device).listen(1234)) {
            g.send(REQUEST, 5000, 1234, new byte[0]);
            g.expect(RESPONSE);
            assertNotNull(listener.accept(Duration.ofSeconds(5)));
            g.transport.locked(() -> g.ev.addChain(new Buffer(event, 8, true)));
            g.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 2);
            assertNull(poll(g, g.ev), "no event while nothing was restored");
            bytes = device.saveState();
            registers = VirtioSavedStateTest.registers(g.m);
            ready = VirtioSavedStateTest.readyQueues(g.m, 3);
        }
        device.close();   // the VM that was saved is gone; its RAM lives on in the restored one

        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        device.restoreState(bytes);
        Guest r = new Guest(g);
        TestDriver.Used used = poll(r, r.ev);
        assertNotNull(used, "the transport reset event, in the buffer posted before the snapshot");
        assertEquals(4, used.length());
        assertEquals(0, ctx.memory.readInt(event), "VIRTIO_VSOCK_EVENT_TRANSPORT_RESET");
        assertEquals(0x5a5a5a5a, ctx.memory.readInt(event + 4), "nothing past the 4-byte event");
        assertEquals(registers, VirtioSavedStateTest.registers(r.m));
        assertEquals(CID, r.m.r(VirtioMmioTransport.CONFIG), "the guest's CID, which the driver rereads on the event");
        assertEquals(ready, VirtioSavedStateTest.readyQueues(r.m, 3));
        assertEquals(List.of(1, 1, 1), ready);

        r.send(RW, 5000, 1234, "lost".getBytes(StandardCharsets.US_ASCII));
        assertEquals(5000, r.expect(RST).dstPort(), "the connection was the old host's: not restored");
        try (VsockListener listener = ((VsockEndpoint) device).listen(1234)) {
            r.send(REQUEST, 5001, 1234, new byte[0]);
            r.expect(RESPONSE);
            VsockStream stream = listener.accept(Duration.ofSeconds(5));
            r.send(RW, 5001, 1234, "again".getBytes(StandardCharsets.US_ASCII));
            assertEquals("again", readString(stream, 5));
        }
        assertFalse(r.m.needsReset());
    }

    /**
     * The restored guest still holds the saved moment's connections until it handles the reset:
     * a new host connection must not come from one of their host ports, or the guest refuses it.
     */
    @Test
    void aRestoredDeviceConnectsFromHostPortsTheSavedGuestHasNotSeen() throws Exception {
        Guest g = guest("");
        int before = hostConnection(g, (VsockEndpoint) device).srcPort();
        byte[] bytes = device.saveState();
        device.close();
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        device.restoreState(bytes);
        Guest r = new Guest(g);
        int after = hostConnection(r, (VsockEndpoint) device).srcPort();
        assertEquals(before + 1, after, "the next host port after the saved moment's");
    }

    /** A host connection to guest port 9 as the guest sees its REQUEST (it answers nothing). */
    private static Packet hostConnection(Guest g, VsockEndpoint host) throws InterruptedException {
        CompletableFuture.runAsync(() -> {
            try {
                host.connect(9, Duration.ofSeconds(2));
            } catch (IOException e) {
                // nobody answers: only the REQUEST matters here
            }
        });
        return g.expect(REQUEST);
    }

    /** A device saved with an event buffer posted, restored, and the driver's side after it took the reset event. */
    private Guest restoredWithTheResetEventTaken() throws Exception {
        Guest g = guest("");
        long event = g.ev.allocate(4, (byte) 0x5a);
        g.transport.locked(() -> g.ev.addChain(new Buffer(event, 4, true)));
        g.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 2);
        byte[] bytes = device.saveState();
        device.close();
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        device.restoreState(bytes);
        Guest r = new Guest(g);
        assertNotNull(poll(r, r.ev), "the reset event");
        return r;
    }

    /** A host connection to guest port 9 in the background (nobody answers: only its REQUEST matters). */
    private void connectToPort9(Duration limit) {
        VsockEndpoint host = (VsockEndpoint) device;
        CompletableFuture.runAsync(() -> {
            try {
                host.connect(9, limit);
            } catch (IOException e) {
                // nobody answers
            }
        });
    }

    /**
     * A connection from the host after a restore waits until the driver gave an event buffer back
     * after the reset event: until then the guest may still drop its connections, and would drop
     * the new one with them without a word (Linux handles the event in a work item of its own).
     */
    @Test
    void aHostConnectionAfterARestoreWaitsUntilTheDriverHasHandledTheResetEvent() throws Exception {
        Guest r = restoredWithTheResetEventTaken();
        connectToPort9(Duration.ofSeconds(5));
        assertNull(r.recv(300), "no REQUEST while the driver has not handled the reset");
        long again = r.ev.allocate(4, (byte) 0x5a);
        r.transport.locked(() -> r.ev.addChain(new Buffer(again, 4, true)));
        r.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 2);   // the driver handled it and posts the buffer again
        assertEquals(9, r.expect(REQUEST).dstPort());
    }

    /** A driver that never hands the event's buffer back holds host connections up only so long. */
    @Test
    void aDriverThatNeverSaysItHandledTheResetHoldsAConnectionOnlyBriefly() throws Exception {
        Guest r = restoredWithTheResetEventTaken();
        long start = System.nanoTime();
        connectToPort9(Duration.ofSeconds(10));
        assertEquals(9, r.expect(REQUEST).dstPort());
        long waited = (System.nanoTime() - start) / 1_000_000;
        assertTrue(waited >= 1500 && waited < 4500, "held for the hold's 2 s, not more: " + waited + " ms");
    }

    @Test
    void withoutAnEventBufferTheResetEventWaitsForTheDriverToPostOne() throws Exception {
        Guest g = guest("");
        byte[] bytes = device.saveState();
        device.close();
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        device.restoreState(bytes);
        Guest r = new Guest(g);
        long event = r.ev.allocate(4, (byte) 0x5a);
        r.transport.locked(() -> r.ev.addChain(new Buffer(event, 4, true)));
        assertNull(poll(r, r.ev), "nothing before the driver's notify");
        r.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 2);
        TestDriver.Used used = poll(r, r.ev);
        assertNotNull(used);
        assertEquals(4, used.length());
        assertEquals(0, ctx.memory.readInt(event));
        long second = r.ev.allocate(4, (byte) 0x5a);
        r.transport.locked(() -> r.ev.addChain(new Buffer(second, 4, true)));
        r.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 2);
        assertNull(poll(r, r.ev), "one event per restore");
    }

    private static String readString(java.nio.channels.ReadableByteChannel ch, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                break;
            }
        }
        return new String(b.array(), 0, b.position(), StandardCharsets.US_ASCII);
    }

    private static String readLine(SocketChannel ch) throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        ByteBuffer one = ByteBuffer.allocate(1);
        while (ch.read(one) > 0) {
            line.write(one.get(0));
            one.clear();
            if (line.toByteArray()[line.size() - 1] == '\n') {
                break;
            }
        }
        return line.toString(StandardCharsets.US_ASCII);
    }
}
