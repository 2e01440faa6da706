package org.nxia.device.virtio.internal.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.device.virtio.internal.mmio.VirtioDevicesTest;
import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.sys.Sys;
import org.nxia.device.virtio.internal.vhost.VhostUserFrontend;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.SharedRam;

/**
 * virtio-fs when its back-end fails, without KVM or virtiofsd: a back-end played by the test on
 * the vhost-user socket answers the handshake as virtiofsd does, then hangs up, goes silent or
 * exits where the test says. The device must tell the driver (DEVICE_NEEDS_RESET, with the
 * reason in its state) within the reply deadline, not leave its requests unanswered with no sign.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class VirtioFsBackEndFailureTest {

    static final long RAM = 16 << 20;
    static final Duration REPLY = Duration.ofMillis(300);

    @TempDir
    Path dir;
    Arena arena;
    int memfd = -1;
    VirtioDevicesTest.Context ctx;
    VirtioFs fs;
    VirtioMmioTransport transport;
    FakeBackEnd backEnd;

    @BeforeEach
    void ram() throws IOException {
        arena = Arena.ofShared();
        memfd = Sys.memfd("guest-ram", RAM);
        MemorySegment ram = Sys.mapShared(memfd, RAM, arena);
        ctx = new VirtioDevicesTest.Context(GuestMemory.of(0, ram), List.of(new SharedRam(0, RAM, ram.address(), memfd, 0)));
        ctx.interrupts = true;
    }

    @AfterEach
    void close() {
        if (transport != null) {
            transport.close();
        }
        if (fs != null) {
            fs.close();
        }
        if (backEnd != null) {
            backEnd.close();
        }
        Sys.close(memfd);
        arena.close();
    }

    /** What the back-end does when the driver sets DRIVER_OK (the front-end's SET_FEATURES comes first). */
    enum AtActivation { SERVE, HANG_UP, SILENT }

    /** A vhost-user back-end on a Unix socket: virtiofsd's answers, with REPLY_ACK. */
    static final class FakeBackEnd implements VirtioFs.BackEnd {
        final Path socket;
        final AtActivation at;
        final ServerSocketChannel server;
        volatile SocketChannel connection;
        volatile boolean alive = true;

        /** Listening on {@code socket}, acting as {@code at} says. */
        FakeBackEnd(Path socket, AtActivation at) throws IOException {
            this.socket = socket;
            this.at = at;
            this.server = ServerSocketChannel.open(StandardProtocolFamily.UNIX).bind(UnixDomainSocketAddress.of(socket));
            Thread.ofVirtual().start(this::serve);
        }

        /** One that exited before it made its socket. */
        FakeBackEnd(Path socket) {
            this.socket = socket;
            this.at = null;
            this.server = null;
            this.alive = false;
        }

        private void serve() {
            try (SocketChannel c = server.accept()) {
                connection = c;
                for (;;) {
                    ByteBuffer h = read(c, 12);
                    int request = h.getInt(), flags = h.getInt(), size = h.getInt();
                    read(c, size);
                    if (request == 2 && at != AtActivation.SERVE) {   // SET_FEATURES: the driver's DRIVER_OK
                        if (at == AtActivation.HANG_UP) {
                            alive = false;
                            return;
                        }
                        while (c.read(ByteBuffer.allocate(256)) >= 0) {
                            // silent: takes every request, answers none, until the test closes it
                        }
                        return;
                    }
                    long answer = switch (request) {
                        case 1 -> VirtioFs.F_VERSION_1 | SplitQueue.QUEUE_FEATURES | VhostUserFrontend.F_PROTOCOL_FEATURES;
                        case 15 -> VhostUserFrontend.PROTOCOL_F_REPLY_ACK;
                        case 11 -> 0;   // GET_VRING_BASE: queue 0, index 0
                        default -> (flags & 0x8) != 0 ? 0 : -1;
                    };
                    if (answer >= 0) {
                        ByteBuffer r = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN);
                        r.putInt(request).putInt(0x1 | 0x4).putInt(8).putLong(answer).flip();
                        while (r.hasRemaining()) {
                            c.write(r);
                        }
                    }
                }
            } catch (IOException e) {
                // closed by the test
            }
        }

        private static ByteBuffer read(SocketChannel c, int n) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
            while (b.hasRemaining()) {
                if (c.read(b) < 0) {
                    throw new IOException("the front-end hung up");
                }
            }
            return b.flip();
        }

        @Override
        public Path socket() {
            return socket;
        }

        @Override
        public long pid() {
            return -1;
        }

        @Override
        public boolean alive() {
            return alive;
        }

        @Override
        public String logTail() {
            return "fake back-end's last words";
        }

        @Override
        public void close() {
            alive = false;
            try {
                if (connection != null) {
                    connection.close();
                }
                if (server != null) {
                    server.close();
                }
            } catch (IOException e) {
                // closing is all that is left
            }
        }
    }

    /** The device on {@code backEnd}, its driver set up to the step before DRIVER_OK. */
    private VirtioDevicesTest.Mmio device(AtActivation at) throws Exception {
        backEnd = new FakeBackEnd(dir.resolve("vhost.sock"), at);
        fs = VirtioFs.connect(ctx.vmId(), "host".getBytes(StandardCharsets.UTF_8), dir, ctx.sharedRam(), backEnd, Duration.ofSeconds(5),
                REPLY);
        transport = VirtioMmioTransport.attach(ctx, DeviceConfig.parse("virtio-fs:notify=mmio-exit"), fs);
        fs.transport(transport);
        VirtioDevicesTest.Mmio m = new VirtioDevicesTest.Mmio(ctx.windows.getLast());
        assertTrue(m.negotiate(VirtioDevicesTest.F_VERSION_1));
        m.queue(0, TestDriver.create(ctx.memory, 16, 0x100000), 16);
        m.queue(1, TestDriver.create(ctx.memory, 16, 0x200000), 16);
        return m;
    }

    @Test
    void aBackEndThatHangsUpAtActivationFailsTheDeviceAtOnceSayingWhy() throws Exception {
        VirtioDevicesTest.Mmio m = device(AtActivation.HANG_UP);
        int pulses = ctx.pulses;
        long start = System.nanoTime();
        m.driverOk();
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(m.needsReset(), "DEVICE_NEEDS_RESET: " + transport.state());
        assertTrue(ms < REPLY.toMillis() + 1000, "within the reply deadline: " + ms + " ms");
        assertEquals(2, m.interruptStatus() & 2, "the driver is interrupted for it (configuration change)");
        assertTrue(ctx.pulses > pulses);
        String state = transport.state().toString();
        assertTrue(state.contains("lastError=virtio-fs host: setting up the queues: vhost-user back-end: reading the answer to request 8")
                || state.contains("lastError=virtio-fs host: setting up the queues: vhost-user back-end: sending request"), state);
        assertTrue(state.contains("(virtiofsd exited; its log: fake back-end's last words)"), state);
        m.kick(1);
        assertTrue(transport.state().toString().contains("kicksPassed=0"), "no kick goes to a back-end that is gone: " + transport.state());
    }

    @Test
    void aSilentBackEndFailsTheDeviceAtTheReplyDeadline() throws Exception {
        VirtioDevicesTest.Mmio m = device(AtActivation.SILENT);
        long start = System.nanoTime();
        m.driverOk();
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(m.needsReset(), "DEVICE_NEEDS_RESET: " + transport.state());
        assertTrue(ms >= REPLY.toMillis() && ms < REPLY.toMillis() + 2000, "one reply deadline, not one per request: " + ms + " ms");
        String state = transport.state().toString();
        assertTrue(state.contains("did not answer request 8 within 300 ms"), state);
    }

    @Test
    void aBackEndThatExitsWhileServingFailsTheDevice() throws Exception {
        VirtioDevicesTest.Mmio m = device(AtActivation.SERVE);
        m.driverOk();
        assertFalse(m.needsReset(), transport.state().toString());
        int pulses = ctx.pulses;
        backEnd.close();   // virtiofsd is gone
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!m.needsReset() && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        assertTrue(m.needsReset(), "DEVICE_NEEDS_RESET within a call thread's look: " + transport.state());
        assertTrue(ctx.pulses > pulses, "the driver is interrupted for it");
        assertTrue(transport.state().toString().contains("lastError=virtio-fs host: serving the queues (virtiofsd exited; its log: fake back-end's last words)"), transport.state().toString());
    }

    @Test
    void aBackEndThatExitedBeforeItsSocketAppearedIsReportedAtOnce() {
        FakeBackEnd gone = new FakeBackEnd(dir.resolve("none.sock"));
        long start = System.nanoTime();
        IOException e = assertThrows(IOException.class,
                () -> VirtioFs.connect("vm-test", new byte[] {'h'}, dir, ctx.sharedRam(), gone, Duration.ofSeconds(10), REPLY));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(ms < 2000, "not after the 10 s connect timeout: " + ms + " ms");
        assertTrue(e.getMessage().contains("vhost-user back-end exited before its socket"), e.getMessage());
        assertTrue(e.getMessage().endsWith("; its log: fake back-end's last words"), e.getMessage());
    }
}
