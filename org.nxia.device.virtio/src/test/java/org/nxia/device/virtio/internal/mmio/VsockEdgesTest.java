package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.nxia.device.virtio.internal.mmio.VirtioVsockTest.CID;
import static org.nxia.device.virtio.internal.mmio.VirtioVsockTest.CREDIT_REQUEST;
import static org.nxia.device.virtio.internal.mmio.VirtioVsockTest.CREDIT_UPDATE;
import static org.nxia.device.virtio.internal.mmio.VirtioVsockTest.HDR;
import static org.nxia.device.virtio.internal.mmio.VirtioVsockTest.REQUEST;
import static org.nxia.device.virtio.internal.mmio.VirtioVsockTest.RESPONSE;
import static org.nxia.device.virtio.internal.mmio.VirtioVsockTest.RST;
import static org.nxia.device.virtio.internal.mmio.VirtioVsockTest.RW;
import static org.nxia.device.virtio.internal.mmio.VirtioVsockTest.SHUTDOWN;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.ConnectException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.device.virtio.internal.mmio.VirtioDevicesTest.Context;
import org.nxia.device.virtio.internal.mmio.VirtioVsockTest.Guest;
import org.nxia.device.virtio.internal.mmio.VirtioVsockTest.Packet;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.device.virtio.internal.vsock.VirtioVsockFactory;
import org.nxia.device.virtio.vsock.VsockEndpoint;
import org.nxia.device.virtio.vsock.VsockListener;
import org.nxia.device.virtio.vsock.VsockStream;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;

/**
 * virtio-vsock's edges, each as the guest or the host sees it: the header fields and counters the
 * device reports, credit updates at half the buffer, bytes still delivered after the guest resets or
 * shuts down, the stray-RST ring, host-port allocation, the Unix-socket handshake's bounds, protocol
 * errors, the Java API's refusals and time limits. Every wait has a deadline.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class VsockEdgesTest {

    static final Duration DEADLINE = Duration.ofSeconds(5);
    static final int BUF_ALLOC = 256 * 1024;

    private final Context ctx = new Context();
    private Device device;

    private Guest guest(String params) {
        return guest(params, 8);
    }

    private Guest guest(String params, int rxBuffers) {
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID + params), ctx);
        return new Guest(ctx, rxBuffers, HDR + 4096);
    }

    private VsockEndpoint host() {
        return (VsockEndpoint) device;
    }

    @AfterEach
    void close() {
        if (device != null) {
            device.close();
        }
    }

    private String state() {
        return device.state().toString();
    }

    /** The device's counter {@code name} (bytesToHost, resets, ...) from its state. */
    private long counter(String name) {
        String s = state();
        int at = s.indexOf(name + "=");
        assertTrue(at >= 0, name + " in " + s);
        int from = at + name.length() + 1;
        int to = from;
        while (to < s.length() && Character.isDigit(s.charAt(to))) {
            to++;
        }
        return Long.parseLong(s.substring(from, to));
    }

    /** A guest connection from {@code guestPort} to {@code listener}, accepted by the host. */
    private static VsockStream accepted(Guest g, VsockListener listener, int guestPort) throws Exception {
        g.send(REQUEST, guestPort, listener.port(), new byte[0]);
        Packet response = g.expect(RESPONSE);
        assertEquals(listener.port(), response.srcPort());
        assertEquals(guestPort, response.dstPort());
        VsockStream stream = listener.accept(DEADLINE);
        assertNotNull(stream);
        return stream;
    }

    /** The host's connect in a thread of its own; the guest answers with {@link #answer}. */
    private CompletableFuture<VsockStream> connecting(int guestPort, Duration timeout) {
        CompletableFuture<VsockStream> f = new CompletableFuture<>();
        VsockEndpoint host = host();
        Thread.ofVirtual().start(() -> {
            try {
                f.complete(host.connect(guestPort, timeout));
            } catch (Throwable e) {
                f.completeExceptionally(e);
            }
        });
        return f;
    }

    /** A host connection the guest accepted: its REQUEST answered with RESPONSE. */
    private VsockStream hostConnection(Guest g, int guestPort) throws Exception {
        CompletableFuture<VsockStream> f = connecting(guestPort, DEADLINE);
        Packet request = g.expect(REQUEST);
        assertEquals(guestPort, request.dstPort());
        g.send(RESPONSE, guestPort, request.srcPort(), new byte[0]);
        return f.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** Reads until {@code n} bytes or the end of the stream; returns how many came. Fails after {@link #DEADLINE}. */
    private static int readCount(VsockStream stream, int n) {
        return assertTimeoutPreemptively(DEADLINE, () -> {
            ByteBuffer b = ByteBuffer.allocate(n);
            while (b.hasRemaining() && stream.read(b) >= 0) {
                // until n bytes or the end
            }
            return b.position();
        });
    }

    private static int readOne(VsockStream stream) {
        return assertTimeoutPreemptively(DEADLINE, () -> stream.read(ByteBuffer.allocate(1)));
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    /** Waits until {@code what} holds, failing after {@link #DEADLINE}. */
    private static void await(String what, java.util.function.BooleanSupplier ok) throws InterruptedException {
        long end = System.nanoTime() + DEADLINE.toNanos();
        while (!ok.getAsBoolean()) {
            assertTrue(System.nanoTime() - end < 0, what);
            Thread.sleep(5);
        }
    }

    /** One run of an operation whose fds {@link #assertNoFdLeftPerRun} counts; {@code i} counts the runs from 0. */
    interface Run {
        void run(int i) throws Exception;
    }

    /**
     * Runs {@code op} {@code runs} times and fails unless the fds open in this process (/proc/self/fd) come
     * back, within the deadline, to fewer than half a run's worth above what they were: an fd left open by
     * each run grows with the runs, the few the JVM opens by itself (a jar, a class loader's) do not. Waited
     * for: a channel the device's selector holds is closed when its I/O thread next drops the channel's key.
     */
    static void assertNoFdLeftPerRun(int runs, Run op) throws Exception {
        long before = VsockLimitsTest.openFds();
        for (int i = 0; i < runs; i++) {
            op.run(i);
        }
        long end = System.nanoTime() + DEADLINE.toNanos();
        long now;
        while ((now = VsockLimitsTest.openFds()) >= before + runs / 2) {
            assertTrue(System.nanoTime() - end < 0, "fds " + before + " -> " + now + " after " + runs + " runs");
            Thread.sleep(5);
        }
    }

    /** Posts {@code n} more receive buffers and notifies the receive queue. */
    private static void post(Guest g, int n) {
        for (int i = 0; i < n; i++) {
            long buf = g.rx.allocate(g.rxSize);
            g.transport.locked(() -> g.rxBuffers.put(g.rx.addChain(new Buffer(buf, g.rxSize, true)), buf));
        }
        g.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
    }

    // ------------------------------------------------------------------ what the device reports

    @Test
    void headersAndCountersSayWhatMoved() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(1234)) {
            assertEquals(1234, listener.port());
            VsockStream stream = accepted(g, listener, 5000);
            assertEquals(1234, stream.hostPort());
            assertEquals(5000, stream.guestPort());
            g.send(RW, 5000, 1234, ascii("hello"));
            assertEquals(5, readCount(stream, 5));
            assertEquals(6, stream.write(ByteBuffer.wrap(ascii("world!"))), "write says what it wrote");
            Packet data = g.expect(RW);
            assertEquals("world!", data.text());
            assertEquals(6, data.len());
            assertEquals(BUF_ALLOC, data.bufAlloc(), "the host's buf_alloc");
            assertEquals(5, data.fwdCnt(), "fwd_cnt: the 5 bytes handed to the host");
            assertEquals(0, data.flags());
            await("counters", () -> state().contains("connections=1, packetsFromGuest=2, packetsToGuest=2, bytesToHost=5, "
                    + "bytesToGuest=6, resets=0, dropped=0"));
            assertTrue(state().contains("guestCid=" + CID + ", uds=,"), state());

            // a bad packet on the live connection resets it: counted as dropped, and as a reset
            g.send(CID, 2, 2, RW, 0, 5000, 1234, new byte[0], 0);
            g.expect(RST);
            assertEquals(-1, readOne(stream), "the host's stream ends with it");
            assertTrue(state().contains("connections=0"), state());
            assertTrue(state().contains("resets=1, dropped=1"), state());
            assertTrue(state().contains("lastError=port 5000: guest port 5000: socket type 2 is not stream (1)"), state());
            // an RST the guest sends itself is no device reset
            VsockStream second = accepted(g, listener, 5001);
            g.send(RST, 5001, 1234, new byte[0]);
            assertEquals(-1, readOne(second));
            assertTrue(state().contains("resets=1,"), state());
        }
    }

    @Test
    void javaStreamsNameTheirPortsUnsignedAndCloseEachWay() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(-2)) {
            VsockStream stream = accepted(g, listener, -1);
            assertEquals("vsock stream host:4294967294 <-> guest:4294967295", stream.toString());
            assertTrue(stream.isOpen());
            stream.shutdownOutput();
            assertTrue(stream.isOpen(), "reading goes on after shutdownOutput");
            Packet shut = g.expect(SHUTDOWN);
            assertEquals(2, shut.flags(), "SHUTDOWN with SEND only");
            assertEquals(0, shut.len());
            stream.close();
            assertFalse(stream.isOpen());
        }
    }

    @Test
    void theFactoryNamesItselfAndRefusesAPathThatIsNoSocket(@TempDir Path dir) throws Exception {
        VirtioVsockFactory f = new VirtioVsockFactory();
        assertEquals("virtio-vsock", f.type());
        assertTrue(f.description().startsWith("virtio-vsock over virtio-mmio"), f.description());
        Path file = Files.writeString(dir.resolve("file"), "x");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> f.create(DeviceConfig.parse("virtio-vsock:uds=" + file), ctx));
        assertTrue(e.getMessage().contains("exists and is not a socket"), e.getMessage());
        Path sub = Files.createDirectory(dir.resolve("sub"));
        assertThrows(IllegalArgumentException.class, () -> f.create(DeviceConfig.parse("virtio-vsock:uds=" + sub), ctx));
        assertEquals("x", Files.readString(file), "a file that is no socket is left alone");
        assertTrue(Files.isDirectory(sub));

        // a socket file left by an earlier run is replaced, and removed when the device closes
        Path uds = dir.resolve("v.sock");
        try (ServerSocketChannel stale = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            stale.bind(UnixDomainSocketAddress.of(uds));
        }
        assertTrue(Files.exists(uds));
        device = f.create(DeviceConfig.parse("virtio-vsock:cid=9,uds=" + uds), ctx);
        assertEquals("virtio-vsock", ((org.nxia.vmm.api.device.Device) device).type());
        assertEquals(9, host().guestCid());
        assertTrue(state().contains("uds=" + uds), state());
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(uds))) {
            assertTrue(client.isConnected(), "the device listens on the path again");
        }
        device.close();
        device = null;
        assertFalse(Files.exists(uds), "the socket file goes with the device");
    }

    @Test
    void aHostPortHasOneListenerUntilItCloses() throws Exception {
        Guest g = guest("");
        VsockListener first = host().listen(80);
        assertThrows(IllegalStateException.class, () -> host().listen(80));
        VsockListener other = host().listen(81);
        other.close();
        // closing another port's listener leaves this one
        accepted(g, first, 5000).close();
        assertEquals(5000, g.expect(SHUTDOWN).dstPort(), "the host's close");
        first.close();
        g.send(REQUEST, 5001, 80, new byte[0]);
        assertEquals(5001, g.expect(RST).dstPort(), "nobody listens any more");
        try (VsockListener again = host().listen(80)) {
            accepted(g, again, 5002).close();
        }
    }

    // ------------------------------------------------------------------ credit

    @Test
    void aCreditUpdateGoesWhenHalfTheBufferWasForwarded() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            VsockStream stream = accepted(g, listener, 5000);
            g.send(RW, 5000, 80, new byte[65536]);
            g.send(RW, 5000, 80, new byte[65535]);
            assertEquals(131071, readCount(stream, 131071));
            assertNull(g.recv(300), "one byte short of half the buffer: no update yet");
            g.send(RW, 5000, 80, new byte[1]);
            assertEquals(1, readCount(stream, 1));
            Packet update = g.expect(CREDIT_UPDATE);
            assertEquals(BUF_ALLOC / 2, update.fwdCnt());
            assertEquals(BUF_ALLOC, update.bufAlloc());
            assertEquals(0, update.len());
            assertNull(g.recv(200), "one update");
            g.send(RW, 5000, 80, new byte[1]);
            assertEquals(1, readCount(stream, 1));
            assertNull(g.recv(300), "counted from the fwd_cnt the guest was last told: no second update");
            stream.write(ByteBuffer.wrap(ascii("x")));
            assertEquals(BUF_ALLOC / 2 + 1, g.expect(RW).fwdCnt(), "every header tells the guest the fwd_cnt");
            stream.close();
        }
    }

    @Test
    void aGuestAskingForCreditIsToldItAndOneThatGivesNoneGetsNoData() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            g.bufAlloc = 0;
            VsockStream stream = accepted(g, listener, 5000);
            stream.write(ByteBuffer.wrap(ascii("wait")));
            assertEquals(CREDIT_REQUEST, g.expect(CREDIT_REQUEST).op(), "no credit: the device asks, and sends no data");
            assertNull(g.recv(200), "asked once");
            g.send(VirtioVsockTest.CREDIT_REQUEST, 5000, 80, new byte[0]);
            Packet update = g.expect(CREDIT_UPDATE);
            assertEquals(BUF_ALLOC, update.bufAlloc());
            // a fwd_cnt past what was sent leaves no credit either (in flight counts mod 2^32)
            g.bufAlloc = 3;
            g.fwdCnt = 10;
            g.send(CREDIT_UPDATE, 5000, 80, new byte[0]);
            assertNull(g.recv(200), "a nonsense fwd_cnt is no credit");
            g.fwdCnt = 0;
            g.send(CREDIT_UPDATE, 5000, 80, new byte[0]);
            assertEquals("wai", g.expect(RW).text(), "3 bytes of credit: 3 bytes");
            assertEquals(0, g.expect(CREDIT_REQUEST).len(), "and the credit is spent");
            g.fwdCnt = 3;
            g.send(CREDIT_UPDATE, 5000, 80, new byte[0]);
            assertEquals("t", g.expect(RW).text());
            stream.close();
        }
    }

    @Test
    void aPacketOfSixtyFourKibIsTakenOneByteMoreResets() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            VsockStream stream = accepted(g, listener, 5000);
            g.send(RW, 5000, 80, new byte[65536]);
            assertEquals(65536, readCount(stream, 65536));
            g.payload = g.tx.allocate(65537);   // before the header the next send allocates
            g.send(RW, 5000, 80, new byte[65537]);
            g.expect(RST);
            assertTrue(state().contains("length 65537 is over 65536"), state());
            assertEquals(-1, readOne(stream));
        }
    }

    // ------------------------------------------------------------------ the guest's bytes outlive its end

    @Test
    void bytesTheHostHasNotReadAreDeliveredAfterTheGuestsReset() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            VsockStream stream = accepted(g, listener, 5000);
            for (int i = 0; i < 3; i++) {
                g.send(RW, 5000, 80, new byte[65536]);   // more than a pipe holds: the rest waits in the device
            }
            g.send(RST, 5000, 80, new byte[0]);
            g.send(RW, 5000, 80, new byte[8]);
            assertEquals(5000, g.expect(RST).dstPort(), "the connection is gone for the guest at once");
            assertEquals(3 * 65536, readCount(stream, 3 * 65536 + 1), "every byte, then the end of the stream");
            await("the drained connection is released", () -> state().contains("connections=0"));
        }
    }

    @Test
    void aStreamNobodyAcceptedIsDroppedWithItsBytesWhenTheGuestResets() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            g.send(REQUEST, 5000, 80, new byte[0]);
            g.expect(RESPONSE);
            for (int i = 0; i < 2; i++) {
                g.send(RW, 5000, 80, new byte[65536]);
            }
            g.send(RST, 5000, 80, new byte[0]);
            assertTrue(state().contains("connections=0"), "nobody would read a drain: " + state());
            assertNull(listener.accept(Duration.ZERO), "no longer offered to accept");
        }
    }

    @Test
    void bytesTheHostHasNotReadComeBeforeTheEndAfterTheGuestsShutdown() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            VsockStream stream = accepted(g, listener, 5000);
            for (int i = 0; i < 3; i++) {
                g.send(RW, 5000, 80, new byte[65536]);
            }
            g.send(CID, 2, 1, SHUTDOWN, 2, 5000, 80, new byte[0], 0);
            assertEquals(3 * 65536, readCount(stream, 3 * 65536 + 1), "every byte, then the end of the stream");
            stream.write(ByteBuffer.wrap(ascii("back")));
            Packet back = g.expect(CREDIT_UPDATE);
            assertEquals(BUF_ALLOC / 2, back.fwdCnt(), "the host took half the buffer");
            assertEquals("back", g.expect(RW).text(), "the other direction goes on");
            stream.shutdownOutput();
            assertEquals(2, g.expect(SHUTDOWN).flags());
            assertEquals(RST, g.expect(RST).op(), "both directions done: the device ends it");
            await("released", () -> state().contains("connections=0"));
        }
    }

    @Test
    void theGuestsShutdownAfterTheHostsEndsTheConnection() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            VsockStream stream = accepted(g, listener, 5000);
            stream.write(ByteBuffer.wrap(ascii("bye")));
            stream.shutdownOutput();
            assertEquals("bye", g.expect(RW).text());
            assertEquals(2, g.expect(SHUTDOWN).flags(), "the end comes after the data");
            g.send(RW, 5000, 80, ascii("late"));
            assertEquals("late", new String(readBytes(stream, 4), StandardCharsets.US_ASCII), "the guest may still send");
            g.send(CID, 2, 1, SHUTDOWN, 2, 5000, 80, new byte[0], 0);   // SEND only: with the host's, both are done
            g.expect(RST);
            assertEquals(-1, readOne(stream));
        }
    }

    private static byte[] readBytes(VsockStream stream, int n) {
        return assertTimeoutPreemptively(DEADLINE, () -> {
            ByteBuffer b = ByteBuffer.allocate(n);
            while (b.hasRemaining() && stream.read(b) >= 0) {
                // until n bytes or the end
            }
            return java.util.Arrays.copyOf(b.array(), b.position());
        });
    }

    @Test
    void aHostThatStopsReadingResetsTheGuestsNextWrite() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            VsockStream stream = accepted(g, listener, 5000);
            stream.close();
            g.send(RW, 5000, 80, ascii("nobody"));
            Packet p;
            do {
                p = g.recv(5000);
                assertNotNull(p, "an RST for the write nobody takes");
            } while (p.op() == SHUTDOWN);
            assertEquals(RST, p.op());
            assertTrue(state().contains("host side"), state());
        }
    }

    // ------------------------------------------------------------------ protocol errors

    @Test
    void packetsOutOfTurnAreAnsweredWithRst() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            VsockStream stream = accepted(g, listener, 5000);
            g.send(RESPONSE, 5000, 80, new byte[0]);
            g.expect(RST);
            assertTrue(state().contains("RESPONSE to a connection that was not requested"), state());
            assertEquals(-1, readOne(stream));

            stream = accepted(g, listener, 5001);
            g.send(REQUEST, 5001, 80, new byte[0]);
            assertEquals(5001, g.expect(RST).dstPort());
            assertTrue(state().contains("a second REQUEST"), state());
            assertEquals(-1, readOne(stream));
        }
        // to connections that do not exist: a RESPONSE, a SHUTDOWN, a CREDIT_UPDATE, ops 0 and 8
        g.send(RESPONSE, 5002, 80, new byte[0]);
        assertEquals(5002, g.expect(RST).dstPort());
        g.send(SHUTDOWN, 5003, 80, new byte[0]);
        assertEquals(5003, g.expect(RST).dstPort());
        g.send(CREDIT_UPDATE, 5004, 80, new byte[0]);
        assertEquals(5004, g.expect(RST).dstPort());
        g.send(CID, 2, 1, 0, 0, 5005, 80, new byte[0], 0);
        assertEquals(5005, g.expect(RST).dstPort());
        g.send(CID, 2, 1, 8, 0, 5006, 80, new byte[0], 0);
        assertEquals(5006, g.expect(RST).dstPort());
        g.send(CID, 2, 1, RST, 0, 5007, 80, new byte[4], 4);   // a bad RST is not answered either
        assertNull(g.recv(200));
        assertTrue(state().contains("dropped=3"), state());
        g.send(CID, 2, 1, RW, 0, 5008, 80, new byte[4], 5000);
        assertEquals(5008, g.expect(RST).dstPort());
        assertTrue(state().contains("length 5000 is more than the 4 payload bytes its buffers hold"), state());
    }

    @Test
    void aShutdownBeforeTheGuestAcceptedRefusesTheHostsConnection() throws Exception {
        Guest g = guest("");
        CompletableFuture<VsockStream> f = connecting(9, DEADLINE);
        Packet request = g.expect(REQUEST);
        g.send(SHUTDOWN, 9, request.srcPort(), new byte[0]);
        assertEquals(request.srcPort(), g.expect(RST).srcPort());
        Throwable e = assertThrows(Exception.class, () -> f.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS)).getCause();
        assertInstanceOf(ConnectException.class, e);
        assertTrue(e.getMessage().contains("the guest refused port 9"), e.getMessage());
    }

    // ------------------------------------------------------------------ stray RSTs and host ports

    @Test
    void strayRstsWaitInARingOfSixtyFourTheOldestDropped() throws Exception {
        Guest g = guest("", 0);
        for (int i = 0; i < 70; i++) {
            g.send(REQUEST, 6000 + i, 80, new byte[0]);   // nobody listens, and no receive buffer yet
        }
        post(g, 16);
        for (int i = 6; i < 70; i++) {
            Packet p = g.expect(RST);
            assertEquals(6000 + i, p.dstPort(), "the newest 64, oldest first");
            assertEquals(80, p.srcPort());
        }
        assertNull(g.recv(200));
    }

    @Test
    void aDeviceResetForgetsItsConnectionsAndStrayRsts() throws Exception {
        Guest g = guest("", 0);
        try (VsockListener listener = host().listen(80)) {
            g.send(REQUEST, 5000, 81, new byte[0]);
            g.send(REQUEST, 5001, 80, new byte[0]);
            assertTrue(state().contains("connections=1"), state());
            VsockStream stream = listener.accept(DEADLINE);
            Guest again = new Guest(ctx, 8, HDR + 4096);   // the driver resets the device and starts over
            assertEquals(-1, readOne(stream), "the host's stream ends");
            assertTrue(state().contains("connections=0"), state());
            assertNull(again.recv(200), "the RST and RESPONSE waiting for buffers went with the reset");
            accepted(again, listener, 5002).close();
        }
    }

    @Test
    void hostPortsSkipOnesInUseAndWrapToTheFirst() throws Exception {
        Guest g = guest("");
        int first = 1 << 30;
        try (VsockListener listener = host().listen(first)) {
            accepted(g, listener, 5000);   // host port 2^30 taken by a guest connection
            assertEquals(first + 1, hostConnection(g, 9).hostPort(), "the first host port is in use: the next one");
        }
        // a device restored at the last port goes from 0xffffffff to the first again
        byte[] bytes = device.saveState();
        bytes[bytes.length - 4] = bytes[bytes.length - 3] = bytes[bytes.length - 2] = bytes[bytes.length - 1] = (byte) 0xff;
        device.close();
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        device.restoreState(bytes);
        Guest r = new Guest(g);
        long event = r.ev.allocate(4);
        r.transport.locked(() -> r.ev.addChain(new Buffer(event, 4, true)));
        r.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 2);
        r.transport.locked(() -> assertNotNull(r.ev.pollUsed(), "the reset event"));
        long again = r.ev.allocate(4);
        r.transport.locked(() -> r.ev.addChain(new Buffer(again, 4, true)));
        r.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 2);   // handled
        assertEquals(-1, hostConnection(r, 9).hostPort());
        assertEquals(first, hostConnection(r, 9).hostPort());
    }

    @Test
    void anEventBufferTooSmallForTheEventIsADriverError() throws Exception {
        Guest g = guest("");
        long event = g.ev.allocate(3);
        g.transport.locked(() -> g.ev.addChain(new Buffer(event, 3, true)));
        g.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 2);
        byte[] bytes = device.saveState();
        device.close();
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        Guest r = new Guest(g);
        device.restoreState(bytes);
        assertTrue(r.m.needsReset(), "a 3-byte event buffer cannot take the 4-byte reset event");
        assertNull(poll(r, r.ev), "and it is not used");
    }

    private static TestDriver.Used poll(Guest g, TestDriver d) {
        TestDriver.Used[] used = new TestDriver.Used[1];
        g.transport.locked(() -> used[0] = d.pollUsed());
        return used[0];
    }

    // ------------------------------------------------------------------ the Java API's limits

    @Test
    void aConnectTheGuestDoesNotAnswerTimesOutAndIsReset() throws Exception {
        Guest g = guest("");
        CompletableFuture<VsockStream> f = connecting(9, Duration.ofMillis(300));
        Packet request = g.expect(REQUEST);
        Throwable e = assertThrows(Exception.class, () -> f.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS)).getCause();
        assertInstanceOf(ConnectException.class, e);
        assertTrue(e.getMessage().contains("did not accept port 9 within PT0.3S"), e.getMessage());
        Packet rst = g.expect(RST);
        assertEquals(request.srcPort(), rst.srcPort());
        assertEquals(9, rst.dstPort());
        assertTrue(state().contains("connections=0"), state());
        assertTrue(state().contains("did not answer a connection to port 9"), state());
        // a RESPONSE now is too late
        g.send(RESPONSE, 9, request.srcPort(), new byte[0]);
        assertEquals(9, g.expect(RST).dstPort());
    }

    @Test
    void anInterruptedConnectGivesUp() throws Exception {
        Guest g = guest("");
        CompletableFuture<Throwable> result = new CompletableFuture<>();
        CompletableFuture<Boolean> flag = new CompletableFuture<>();
        VsockEndpoint host = host();
        Thread t = Thread.ofPlatform().daemon().start(() -> {
            try {
                host.connect(9, Duration.ofSeconds(30));
                result.complete(null);
            } catch (Throwable e) {
                result.complete(e);
            }
            flag.complete(Thread.currentThread().isInterrupted());
        });
        g.expect(REQUEST);
        t.interrupt();
        assertInstanceOf(InterruptedIOException.class, result.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS));
        assertTrue(flag.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS), "the interrupt is kept");
    }

    @Test
    void aConnectTheGuestRefusesLeavesNoFd() throws Exception {
        Guest g = guest("");
        assertNoFdLeftPerRun(24, i -> {
            CompletableFuture<VsockStream> f = connecting(100 + i, DEADLINE);
            Packet request = g.expect(REQUEST);
            g.send(RST, 100 + i, request.srcPort(), new byte[0]);
            Throwable e = assertThrows(Exception.class, () -> f.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS)).getCause();
            assertInstanceOf(ConnectException.class, e);
        });
    }

    @Test
    void aConnectThatTimesOutLeavesNoFd() throws Exception {
        Guest g = guest("");
        assertNoFdLeftPerRun(24, i -> {
            CompletableFuture<VsockStream> f = connecting(100 + i, Duration.ofMillis(10));
            g.expect(REQUEST);
            Throwable e = assertThrows(Exception.class, () -> f.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS)).getCause();
            assertInstanceOf(ConnectException.class, e);
            assertEquals(100 + i, g.expect(RST).dstPort(), "the device gives up on it");
        });
    }

    @Test
    void anInterruptedConnectLeavesNoFd() throws Exception {
        Guest g = guest("");
        assertNoFdLeftPerRun(24, i -> {
            Thread.currentThread().interrupt();
            assertThrows(InterruptedIOException.class, () -> host().connect(100 + i, DEADLINE));
            assertTrue(Thread.interrupted(), "the interrupt is kept");
            Packet request = g.expect(REQUEST);
            g.send(RST, 100 + i, request.srcPort(), new byte[0]);   // the device's ends go with the guest's answer
        });
    }

    @Test
    void theHostConnectsUntilEverySlotIsTaken() throws Exception {
        Guest g = guest("");
        List<VsockStream> open = new ArrayList<>();
        for (int i = 0; i < 32; i++) {
            open.add(hostConnection(g, 100 + i));
        }
        IOException e = assertThrows(IOException.class, () -> host().connect(200, DEADLINE));
        assertTrue(e.getMessage().contains("32 connections are open or closing"), e.getMessage());
        // a refused connect closes the two pipes it opened, the device's ends and the caller's
        assertNoFdLeftPerRun(24, i -> assertThrows(IOException.class, () -> host().connect(300 + i, DEADLINE)));
        assertNull(g.recv(100), "no REQUEST for a refused connect");
        // and the guest's own are refused then, too
        try (VsockListener listener = host().listen(80)) {
            g.send(REQUEST, 5000, 80, new byte[0]);
            assertEquals(5000, g.expect(RST).dstPort());
            assertTrue(state().contains("32 connections are open or closing"), state());
        }
        for (VsockStream s : open) {
            s.close();
        }
    }


    @Test
    void dataIsCutToTheReceiveBuffersRoom() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            VsockStream stream = accepted(g, listener, 5000);
            byte[] text = new byte[5000];
            for (int i = 0; i < text.length; i++) {
                text[i] = (byte) ('a' + i % 26);
            }
            stream.write(ByteBuffer.wrap(text));
            Packet first = g.expect(RW);
            assertEquals(4096, first.len(), "a buffer of 44 + 4096 bytes");
            Packet rest = first;
            int got = first.len();
            while (got < text.length) {
                rest = g.expect(RW);
                got += rest.len();
            }
            assertEquals(text.length, got);
            assertEquals((byte) ('a' + 4999 % 26), rest.data()[rest.len() - 1]);
            assertTrue(state().contains("bytesToGuest=5000"), state());
            stream.close();
        }
    }

    @Test
    void aCreditRequestThatFoundNoBufferIsSentWhenOneComes() throws Exception {
        Guest g = guest("", 0);
        try (VsockListener listener = host().listen(80)) {
            g.bufAlloc = 0;
            g.send(REQUEST, 5000, 80, new byte[0]);   // no receive buffer: the RESPONSE waits
            VsockStream stream = listener.accept(DEADLINE);
            assertNotNull(stream);
            stream.write(ByteBuffer.wrap(ascii("data")));
            Thread.sleep(200);   // the device has read it and has no credit to send it with
            post(g, 1);   // one buffer: the RESPONSE takes it, the CREDIT_REQUEST finds none
            assertEquals(RESPONSE, g.expect(RESPONSE).op());   // which posts the buffer again
            assertEquals(CREDIT_REQUEST, g.expect(CREDIT_REQUEST).op(), "asked once a buffer came");
            g.bufAlloc = 64;
            g.send(CREDIT_UPDATE, 5000, 80, new byte[0]);
            assertEquals("data", g.expect(RW).text());
            stream.close();
        }
    }

    @Test
    void aGuestResetWhileTheDeviceThreadSleepsEndsTheHostsRead() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            VsockStream stream = accepted(g, listener, 5000);
            VsockSplitBuffersTest.awaitIoThreadIdle();
            g.send(RST, 5000, 80, new byte[0]);
            assertEquals(-1, readOne(stream), "the pipe the selector held is closed at once");
        }
    }

    @Test
    void theDevicesConnectLimitEndsAJavaConnectBeforeItsOwnTimeout() throws Exception {
        Guest g = guest(",connect-ms=200");
        long start = System.nanoTime();
        CompletableFuture<VsockStream> f = connecting(9, Duration.ofSeconds(20));
        Packet request = g.expect(REQUEST);
        assertEquals(request.srcPort(), g.expect(RST).srcPort(), "no answer within 200 ms: the device gives up");
        Throwable e = assertThrows(Exception.class, () -> f.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS)).getCause();
        assertInstanceOf(ConnectException.class, e);
        assertTrue(e.getMessage().contains("refused port 9"), e.getMessage());
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(4), "at the device's limit, not the caller's");
        assertTrue(state().contains("no answer to the connection to guest port 9 within 200 ms"), state());
    }

    @Test
    void aDeviceResetAfterARestoreHoldsNoConnection() throws Exception {
        Guest g = guest("");
        long event = g.ev.allocate(4);
        g.transport.locked(() -> g.ev.addChain(new Buffer(event, 4, true)));
        g.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 2);
        byte[] bytes = device.saveState();
        device.close();
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        device.restoreState(bytes);
        Guest r = new Guest(g);
        assertNotNull(poll(r, r.ev), "the reset event");
        Guest fresh = new Guest(ctx, 8, HDR + 4096);   // the driver starts over instead of handing the buffer back
        long start = System.nanoTime();
        assertEquals(1 << 30, hostConnection(fresh, 9).hostPort());
        assertTrue(System.nanoTime() - start < TimeUnit.MILLISECONDS.toNanos(1500), "not held for the reset event");
    }

    @Test
    void aSavedStateWithoutTheNextPortKeepsTheFirstAndOneWithBytesLeftOverIsRefused() throws Exception {
        Guest g = guest("");
        hostConnection(g, 9);
        byte[] bytes = device.saveState();
        device.close();
        // the device's record is the last field: a 4-byte length, then 18 bytes ("virtio-vsock", version 1, the port)
        byte[] empty = java.util.Arrays.copyOf(bytes, bytes.length - 18);
        empty[empty.length - 1] = 0;
        empty[empty.length - 2] = 0;
        empty[empty.length - 3] = 0;
        empty[empty.length - 4] = 0;
        byte[] longer = java.util.Arrays.copyOf(bytes, bytes.length + 1);
        longer[bytes.length - 22 + 3]++;   // the record's length, one more
        Device refused = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        try {
            assertThrows(IllegalArgumentException.class, () -> refused.restoreState(longer));
        } finally {
            refused.close();
        }
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        device.restoreState(empty);
        Guest r = new Guest(g);
        long event = r.ev.allocate(4);
        r.transport.locked(() -> r.ev.addChain(new Buffer(event, 4, true)));
        r.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 2);
        long again = r.ev.allocate(4);
        r.transport.locked(() -> r.ev.addChain(new Buffer(again, 4, true)));
        r.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 2);
        assertEquals(1 << 30, hostConnection(r, 9).hostPort(), "no port saved: the first");
    }

    @Test
    void aPathTheDeviceCannotListenOnIsRefused(@TempDir Path dir) throws Exception {
        VirtioVsockFactory f = new VirtioVsockFactory();
        assertThrows(IllegalArgumentException.class, () -> f.create(DeviceConfig.parse("virtio-vsock:uds=/"), ctx));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> f.create(DeviceConfig.parse("virtio-vsock:uds=" + dir.resolve("x".repeat(120))), ctx));
        assertTrue(e.getMessage().contains("cannot listen on"), e.getMessage());
        // the selector and socket opened before the bind failed are closed
        assertNoFdLeftPerRun(24, i -> assertThrows(IllegalArgumentException.class,
                () -> f.create(DeviceConfig.parse("virtio-vsock:uds=" + dir.resolve("x".repeat(120))), ctx)));
    }

    @Test
    void aClosedDeviceLeavesNoFd(@TempDir Path dir) throws Exception {
        assertNoFdLeftPerRun(24, i -> new VirtioVsockFactory()
                .create(DeviceConfig.parse("virtio-vsock:cid=" + CID + ",uds=" + dir.resolve("v" + i + ".sock")), ctx).close());
    }

    /** The JDK closes a socket channel whose connect fails; the device's own close is for what fails before. */
    @Test
    void aGuestConnectToAHostPathNobodyListensOnLeavesNoFd(@TempDir Path dir) throws Exception {
        Guest g = guest(",uds=" + dir.resolve("v.sock"));
        assertNoFdLeftPerRun(24, i -> {
            g.send(REQUEST, 5000 + i, 6000, new byte[0]);
            assertEquals(5000 + i, g.expect(RST).dstPort(), "nothing listens on v.sock_6000");
        });
    }

    @Test
    void aHostSocketClosedOnUnreadBytesResetsTheGuestsConnection(@TempDir Path dir) throws Exception {
        Path uds = dir.resolve("v.sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(dir.resolve("v.sock_6000")));
            Guest g = guest(",uds=" + uds);
            g.send(REQUEST, 5000, 6000, new byte[0]);
            g.expect(RESPONSE);
            try (SocketChannel s = server.accept()) {
                g.send(RW, 5000, 6000, ascii("unread"));
                Thread.sleep(50);
            }
            Packet p;
            do {
                p = g.recv(5000);
                assertNotNull(p, "an RST");
            } while (p.op() == SHUTDOWN);
            assertEquals(RST, p.op(), "bytes the host never read: the connection was reset, not ended");
            await("released", () -> state().contains("connections=0"));
        }
    }


    @Test
    void moreThanTheDeviceReadsAheadReachesTheGuestAsItTakesIt() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            VsockStream stream = accepted(g, listener, 5000);
            int total = 200 * 1024;   // past the 64 KiB the device reads ahead, and a pipe's
            byte[] sent = new byte[total];
            for (int i = 0; i < total; i++) {
                sent[i] = (byte) (i * 31 + 7);
            }
            CompletableFuture<Integer> writing = new CompletableFuture<>();
            Thread.ofPlatform().daemon().start(() -> {
                try {
                    writing.complete(stream.write(ByteBuffer.wrap(sent)));
                } catch (IOException e) {
                    writing.completeExceptionally(e);
                }
            });
            java.io.ByteArrayOutputStream got = new java.io.ByteArrayOutputStream();
            while (got.size() < total) {
                Packet p = g.expect(RW);
                got.write(p.data());
            }
            assertEquals(total, writing.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS));
            org.junit.jupiter.api.Assertions.assertArrayEquals(sent, got.toByteArray());
            stream.close();
        }
    }

    @Test
    void aHeaderOnlyBufferCountsAsAReset() throws Exception {
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        Guest g = new Guest(ctx, 8, HDR);
        try (VsockListener listener = host().listen(80)) {
            VsockStream stream = accepted(g, listener, 5000);
            stream.write(ByteBuffer.wrap(ascii("x")));
            g.expect(RST);
            assertTrue(state().contains("resets=1,"), state());
            stream.close();
        }
    }

    @Test
    void theResetEventIsZeroAfterTheDeviceSentPackets() throws Exception {
        Guest g = guest("");
        byte[] bytes = device.saveState();
        device.close();
        device = new VirtioVsockFactory().create(DeviceConfig.parse("virtio-vsock:cid=" + CID), ctx);
        device.restoreState(bytes);
        Guest r = new Guest(g);
        r.send(REQUEST, 5000, 80, new byte[0]);
        assertEquals(5000, r.expect(RST).dstPort(), "a header went out before the event");
        long event = r.ev.allocate(4, (byte) 0x5a);
        r.transport.locked(() -> r.ev.addChain(new Buffer(event, 4, true)));
        r.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 2);
        assertNotNull(poll(r, r.ev));
        assertEquals(0, ctx.memory.readInt(event), "VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, not the last header's bytes");
    }


    @Test
    void payloadSharingTheHeadersDescriptorIsReadOnlyToThatDescriptorsEnd() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            VsockStream stream = accepted(g, listener, 5000);
            long first = g.tx.allocate(HDR + 6);
            VirtioVsockTest.header(g.mem(), first, CID, 2, 1, RW, 0, 5000, 80, 6, g.bufAlloc, 0);
            g.mem().write(first + HDR, ascii("abcZZZ"));   // the descriptor ends after "abc"; "ZZZ" is not the packet's
            long second = g.tx.allocate(3);
            g.mem().write(second, ascii("def"));
            g.transport.locked(() -> g.tx.addChain(new Buffer(first, HDR + 3, false), new Buffer(second, 3, false)));
            g.m.w(VirtioMmioTransport.QUEUE_NOTIFY, 1);
            g.transport.locked(() -> assertNotNull(g.tx.pollUsed()));
            assertEquals("abcdef", new String(readBytes(stream, 6), StandardCharsets.US_ASCII));
            stream.close();
        }
    }

    @Test
    void hostDataWaitingForCreditSurvivesTheGuestsShutdownSend() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            g.bufAlloc = 0;
            VsockStream stream = accepted(g, listener, 5000);
            stream.write(ByteBuffer.wrap(ascii("kept")));
            g.expect(CREDIT_REQUEST);   // read ahead, waiting for credit
            g.send(CID, 2, 1, SHUTDOWN, 2, 5000, 80, new byte[0], 0);   // SEND: the guest still receives
            assertEquals(-1, readOne(stream));
            g.bufAlloc = 64;
            g.send(CREDIT_UPDATE, 5000, 80, new byte[0]);
            assertEquals("kept", g.expect(RW).text());
            stream.close();
        }
    }

    @Test
    void anOpenConnectionOutlivesTheConnectLimit() throws Exception {
        Guest g = guest(",connect-ms=100");
        try (VsockListener listener = host().listen(80)) {
            VsockStream stream = accepted(g, listener, 5000);
            VsockStream out = hostConnection(g, 9);
            CompletableFuture<VsockStream> pending = connecting(10, DEADLINE);   // a deadline keeps the device's thread waking
            g.expect(REQUEST);
            assertEquals(10, g.expect(RST).dstPort(), "the unanswered one ends at 100 ms");
            assertThrows(Exception.class, () -> pending.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS));
            Thread.sleep(300);
            assertTrue(state().contains("connections=2,"), state());
            g.send(RW, 5000, 80, ascii("alive"));
            assertEquals(5, readCount(stream, 5));
            out.write(ByteBuffer.wrap(ascii("up")));
            assertEquals("up", g.expect(RW).text());
            stream.close();
            out.close();
        }
    }

    @Test
    void aGuestPacketWaitingForABufferAsksForTheNextNotify() throws Exception {
        Guest g = guest("", 0);
        try (VsockListener listener = host().listen(80)) {
            g.send(REQUEST, 5000, 80, new byte[0]);
            g.transport.locked(() -> assertEquals(0, g.rx.usedFlags(), "a RESPONSE waits: notify me"));
            post(g, 1);
            g.expect(RESPONSE);
            g.transport.locked(() -> assertEquals(1, g.rx.usedFlags(), "nothing waits"));
            listener.accept(DEADLINE).close();
        }
    }


    @Test
    void bytesInFlightCountAgainstTheGuestsCredit() throws Exception {
        Guest g = guest("");
        try (VsockListener listener = host().listen(80)) {
            g.bufAlloc = 6;
            VsockStream stream = accepted(g, listener, 5000);
            stream.write(ByteBuffer.wrap(ascii("abcd")));
            assertEquals("abcd", g.expect(RW).text());
            stream.write(ByteBuffer.wrap(ascii("efgh")));
            assertEquals("ef", g.expect(RW).text(), "6 of credit, 4 in flight: 2 more");
            assertEquals(CREDIT_REQUEST, g.expect(CREDIT_REQUEST).op());
            stream.close();
        }
    }

    // ------------------------------------------------------------------ the Unix socket's handshake

    private static SocketChannel client(Path uds, String line) throws IOException {
        SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(uds));
        if (!line.isEmpty()) {
            c.write(ByteBuffer.wrap(ascii(line)));
        }
        return c;
    }

    /** Whether the device closed {@code c}: a read that sees the end of the stream within the deadline. */
    private static boolean closedByDevice(SocketChannel c) throws IOException, InterruptedException {
        c.configureBlocking(false);
        long end = System.nanoTime() + DEADLINE.toNanos();
        while (System.nanoTime() - end < 0) {
            try {
                if (c.read(ByteBuffer.allocate(16)) < 0) {
                    return true;
                }
            } catch (IOException e) {
                return true;   // closed with the client's unread bytes: a reset
            }
            Thread.sleep(5);
        }
        return false;
    }

    @Test
    void theConnectLineIsAtMostThirtyTwoBytesAndItsPortUnsigned(@TempDir Path dir) throws Exception {
        Path uds = dir.resolve("v.sock");
        Guest g = guest(",uds=" + uds);
        String line = "CONNECT 4294967295";
        try (SocketChannel ok = client(uds, line + " ".repeat(32 - line.length()) + "\n")) {
            assertEquals(-1, g.expect(REQUEST).dstPort(), "32 bytes with the padding: taken");
        }
        try (SocketChannel tooLong = client(uds, "CONNECT 7" + " ".repeat(24) + "\n")) {
            assertTrue(closedByDevice(tooLong), "33 bytes: closed");
        }
        try (SocketChannel halves = client(uds, "CONNECT ")) {
            Thread.sleep(100);   // the device has read the first half
            halves.write(ByteBuffer.wrap(ascii("77\n")));
            assertEquals(77, g.expect(REQUEST).dstPort(), "a line in two writes");
        }
        try (SocketChannel bad = client(uds, "CONNECT x\n")) {
            assertTrue(closedByDevice(bad));
            assertTrue(state().contains("sent 'CONNECT x', not 'CONNECT <port>'"), state());
        }
        try (SocketChannel gone = client(uds, "CONN")) {
            gone.shutdownOutput();
            assertTrue(closedByDevice(gone), "a client that ends mid-line is closed");
        }
        await("only the two clients that sent a line are left", () -> state().contains("connections=2,"));
        assertNull(g.recv(200));
    }

    @Test
    void aNinthSilentClientPushesOutTheOldest(@TempDir Path dir) throws Exception {
        Path uds = dir.resolve("v.sock");
        Guest g = guest(",uds=" + uds);
        List<SocketChannel> silent = new ArrayList<>();
        try {
            for (int i = 0; i < 8; i++) {
                silent.add(client(uds, ""));
                int n = i + 1;
                await("client " + n + " taken", () -> state().contains("connections=" + n + ","));
            }
            silent.add(client(uds, ""));
            assertTrue(closedByDevice(silent.get(0)), "the oldest silent client makes room");
            assertTrue(state().contains("pushed out by a newer one"), state());
            for (int i = 1; i < 9; i++) {
                silent.get(i).configureBlocking(false);
                assertEquals(0, silent.get(i).read(ByteBuffer.allocate(1)), "client " + i + " still waits");
            }
            assertTrue(state().contains("connections=8,"), state());
            // a silent client that speaks later is served
            silent.get(1).write(ByteBuffer.wrap(ascii("CONNECT 5\n")));
            assertEquals(5, g.expect(REQUEST).dstPort());
        } finally {
            for (SocketChannel s : silent) {
                s.close();
            }
        }
    }

    /**
     * Opens two silent clients whose slots are out of their age order: a first client takes slot 0 and
     * the older one slot 1; the first leaves, and the newer one takes the freed slot 0. Adds them to
     * {@code opened}, older then newer, for the caller to close.
     */
    private void olderSilentClientInALaterSlot(Path uds, List<SocketChannel> opened) throws Exception {
        SocketChannel first = client(uds, "");
        opened.add(first);
        await("the first client in slot 0", () -> state().contains("connections=1,"));
        opened.add(client(uds, ""));
        await("the older client in slot 1", () -> state().contains("connections=2,"));
        first.close();
        await("slot 0 freed", () -> state().contains("connections=1,"));
        opened.add(client(uds, ""));
        // a free slot is no reason to push a silent client out: both are kept
        await("the newer client in slot 0 beside the older", () -> state().contains("connections=2,"));
        opened.remove(first);
    }

    @Test
    void aSilentClientIsNotPushedOutWhileASlotIsFree(@TempDir Path dir) throws Exception {
        Path uds = dir.resolve("v.sock");
        Guest g = guest(",uds=" + uds);
        List<SocketChannel> clients = new ArrayList<>();
        try {
            olderSilentClientInALaterSlot(uds, clients);
            clients.get(0).write(ByteBuffer.wrap(ascii("CONNECT 8\n")));
            assertEquals(8, g.expect(REQUEST).dstPort(), "the older client, in slot 1, is still served");
            clients.get(1).write(ByteBuffer.wrap(ascii("CONNECT 7\n")));
            assertEquals(7, g.expect(REQUEST).dstPort(), "and the newer, in slot 0");
        } finally {
            for (SocketChannel s : clients) {
                s.close();
            }
        }
    }

    @Test
    void theOldestSilentClientIsPushedOutWhateverItsSlot(@TempDir Path dir) throws Exception {
        Path uds = dir.resolve("v.sock");
        Guest g = guest(",uds=" + uds);
        List<SocketChannel> clients = new ArrayList<>();
        try {
            olderSilentClientInALaterSlot(uds, clients);
            SocketChannel older = clients.get(0);
            SocketChannel newer = clients.get(1);
            for (int i = 2; i < 8; i++) {
                clients.add(client(uds, ""));
                int n = i + 1;
                await("client " + n + " taken", () -> state().contains("connections=" + n + ","));
            }
            clients.add(client(uds, ""));   // the ninth
            assertTrue(closedByDevice(older), "the oldest, in slot 1, makes room, not the newer one in slot 0");
            newer.configureBlocking(false);
            assertEquals(0, newer.read(ByteBuffer.allocate(1)), "the newer still waits");
            newer.write(ByteBuffer.wrap(ascii("CONNECT 7\n")));
            assertEquals(7, g.expect(REQUEST).dstPort());
        } finally {
            for (SocketChannel s : clients) {
                s.close();
            }
        }
    }

    @Test
    void aSocketThatTheHostsServerClosesEndsTheGuestsConnection(@TempDir Path dir) throws Exception {
        Path uds = dir.resolve("v.sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(dir.resolve("v.sock_6000")));
            Guest g = guest(",uds=" + uds);
            g.send(REQUEST, 5000, 6000, new byte[0]);
            g.expect(RESPONSE);
            try (SocketChannel s = server.accept()) {
                s.write(ByteBuffer.wrap(ascii("hi")));
                assertEquals("hi", g.expect(RW).text());
                g.send(RW, 5000, 6000, ascii("yo"));
                ByteBuffer b = ByteBuffer.allocate(2);
                while (b.hasRemaining()) {
                    assertTrue(s.read(b) >= 0);
                }
                assertEquals("yo", new String(b.array(), StandardCharsets.US_ASCII));
                g.send(CID, 2, 1, SHUTDOWN, 2, 5000, 6000, new byte[0], 0);
                assertEquals(-1, s.read(ByteBuffer.allocate(1)), "the guest's SHUTDOWN SEND shuts the socket's output");
            }
            assertEquals(2, g.expect(SHUTDOWN).flags(), "the server's close: SHUTDOWN to the guest");
            g.expect(RST);
            await("released", () -> state().contains("connections=0"));
        }
    }

    @Test
    void guestBytesAHostSocketCannotTakeYetWaitUntilItReads(@TempDir Path dir) throws Exception {
        Path uds = dir.resolve("v.sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(dir.resolve("v.sock_6000")));
            Guest g = guest(",uds=" + uds);
            g.send(REQUEST, 5000, 6000, new byte[0]);
            g.expect(RESPONSE);
            try (SocketChannel s = server.accept()) {
                // the host reads nothing yet: the guest writes until the socket's buffer is full and bytes wait in the device
                byte[] packet = new byte[64 * 1024];
                int sent = 0;
                while (counter("bytesToHost") == sent) {
                    assertTrue(sent < 256 * packet.length, "a socket nobody reads takes less than 16 MiB: " + state());
                    for (int i = 0; i < packet.length; i++) {
                        packet[i] = (byte) ((sent + i) * 31 + 7);
                    }
                    g.send(RW, 5000, 6000, packet);
                    sent += packet.length;
                }
                // now the host reads: the rest goes as the socket takes it (OP_WRITE), in order
                s.configureBlocking(false);
                ByteBuffer got = ByteBuffer.allocate(sent);
                long end = System.nanoTime() + DEADLINE.toNanos();
                while (got.hasRemaining()) {
                    assertTrue(System.nanoTime() - end < 0, got.position() + " of " + sent + " bytes reached the host: " + state());
                    if (s.read(got) == 0) {
                        Thread.sleep(1);
                    }
                }
                for (int i = 0; i < sent; i++) {
                    assertEquals((byte) (i * 31 + 7), got.get(i), "byte " + i);
                }
            }
        }
    }
}
