package org.nxia.device.virtio.internal.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.vmm.spi.GuestMemory;

/**
 * A hostile passt (a small Python peer in its place, speaking the stream
 * protocol on the socket it is given): a frame length outside 14..65550, or a
 * peer that stops reading, ends that passt with the reason said, and the
 * supervisor starts another; nothing reaches the guest from the bad stream.
 */
class PasstPeerTest {

    static final Path PYTHON = Path.of("/usr/bin/python3");

    @TempDir
    Path tmp;

    GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[1 << 20]));
    TestDriver rxDriver = TestDriver.create(memory, 16, 0x1000);
    TestDriver txDriver = TestDriver.create(memory, 16, 0x80000);
    TxFrames tx = new TxFrames(VirtioNet.TX_FRAMES);
    VirtioNet net = new VirtioNet(memory, new byte[] {2, 0, 0, 0, 0, 1}, tx);
    VirtioMmioTransport transport = new VirtioMmioTransport("virtio-net", memory, net);

    /** A peer that accepts one connection on --socket PATH, then runs {@code behaviour} (Python, with {@code c} the connection). */
    Path peer(String behaviour) throws Exception {
        Path script = tmp.resolve("fake-passt");
        Files.writeString(script, """
                #!/usr/bin/python3
                import socket, sys, time
                path = sys.argv[sys.argv.index('--socket') + 1]
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind(path)
                s.listen(1)
                c, _ = s.accept()
                """ + behaviour + "\ntime.sleep(60)\n");
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
        return script;
    }

    void activate() {
        transport.locked(() -> net.activate(1L << VirtioNet.F_MRG_RXBUF,
                new SplitQueue[] {rxDriver.newQueue(0), txDriver.newQueue(0)}));
    }

    /** The guest sends the 64 KiB frame at {@code frame} again in every TX chain the device gave back, 8 more at most. */
    void sendAgain(long frame) {
        transport.locked(() -> {
            while (txDriver.pollUsed() != null) {
                // chains back: send them again
            }
            for (int i = 0; i < 8; i++) {
                try {
                    txDriver.addChain(Buffer.readable(frame, 12 + 65536));
                } catch (IllegalStateException full) {
                    break;
                }
            }
            net.process(VirtioNet.TX);
        });
    }

    @Test
    void aFrameLengthOutOfRangeEndsThatPasstAndAnotherStarts() throws Exception {
        assumeTrue(Files.isExecutable(PYTHON), "no python3 for the fake peer");
        activate();
        transport.locked(() -> rxDriver.addChain(Buffer.writable(rxDriver.allocate(4096), 4096)));
        try (Passt passt = new Passt("peer", peer("c.sendall(b'\\xff\\xff\\xff\\xff' + b'x' * 64)"), List.of(), net, tx)) {
            passt.start(transport);
            await(() -> passt.status().starts() >= 2, 20_000);
            assertTrue(passt.status().lastError().contains("frame length of 4294967295"), passt.status().lastError());
            transport.locked(() -> assertTrue(rxDriver.pollUsed() == null, "nothing from the bad stream reached the guest"));
        }
    }

    @Test
    void aPeerThatStopsReadingIsKilledAtTheWriteDeadline() throws Exception {
        assumeTrue(Files.isExecutable(PYTHON), "no python3 for the fake peer");
        activate();
        try (Passt passt = new Passt("peer", peer("pass"), List.of(), net, tx)) {
            passt.start(transport);
            await(() -> {
                boolean[] up = new boolean[1];
                transport.locked(() -> up[0] = net.linkUp());
                return up[0];
            }, 20_000);
            // far more than the socket buffers hold: 64 frames of 64 KiB, sent again as chains come back
            long frame = txDriver.allocate(12 + 65536);
            long deadline = System.currentTimeMillis() + 30_000;
            while (passt.status().starts() < 2 && System.currentTimeMillis() < deadline) {
                sendAgain(frame);
                Thread.sleep(50);
            }
            assertTrue(passt.status().lastError().contains("took no data for " + Passt.WRITE_MILLIS + " ms"), passt.status().toString());
        }
    }

    /**
     * A guest that takes no frames does not stop the device reading passt: what finds the receive
     * queue full is dropped and counted, and the peer's writes all complete (passt cuts a frame
     * whose send finds its socket full, see PasstTest). Before, the device stopped reading and
     * the peer's writes stalled.
     */
    @Test
    void aGuestThatTakesNoFramesDoesNotStopTheDeviceReadingThePeer() throws Exception {
        assumeTrue(Files.isExecutable(PYTHON), "no python3 for the fake peer");
        activate();
        int frames = 20_000;   // 1.3 MB of 64-byte records: far more than the socket and the device's buffers hold
        Path done = tmp.resolve("all-sent");
        String burst = "c.sendall(b''.join((60).to_bytes(4, 'big') + i.to_bytes(4, 'big') * 15 for i in range(" + frames + ")))\n"
                + "open('" + done + "', 'w').close()";
        try (Passt passt = new Passt("peer", peer(burst), List.of(), net, tx)) {
            passt.start(transport);
            await(() -> Files.exists(done), 20_000);
            await(() -> net.state().toString().contains("rxDropped=" + (frames - VirtioNet.RX_FRAMES) + ","), 20_000);
            assertEquals(VirtioNet.RX_FRAMES, net.rxWaiting(), "the queue holds its bound");
            assertEquals(1, passt.status().starts(), "the peer is kept: " + passt.status());
        }
    }

    /** The frames queued while the guest had no buffers reach it in order when it gives them, with nothing more from the peer. */
    @Test
    void framesQueuedWhileTheGuestWasBehindReachItWithoutMoreFromThePeer() throws Exception {
        assumeTrue(Files.isExecutable(PYTHON), "no python3 for the fake peer");
        activate();
        int frames = VirtioNet.RX_FRAMES + 72;
        // one burst, more frames than the device queues, then silence: those queued must still arrive
        // when the guest catches up (no later byte from the peer to prompt it); the rest are dropped
        String burst = "c.sendall(b''.join((60).to_bytes(4, 'big') + i.to_bytes(4, 'big') * 15 for i in range(" + frames + ")))";
        long[] buffers = new long[16];
        for (int i = 0; i < buffers.length; i++) {
            buffers[i] = rxDriver.allocate(4096);
        }
        try (Passt passt = new Passt("peer", peer(burst), List.of(), net, tx)) {
            passt.start(transport);
            await(() -> net.state().toString().contains("rxDropped=72,"), 20_000);   // the guest has no buffers yet
            int[] received = {0};
            int[] next = {0};
            long deadline = System.currentTimeMillis() + 20_000;
            while (received[0] < VirtioNet.RX_FRAMES && System.currentTimeMillis() < deadline) {
                transport.locked(() -> {
                    while (rxDriver.pollUsed() != null) {
                        // the device fills buffers in the order they were made available
                        int seq = memory.readInt(buffers[received[0] % buffers.length] + VirtioNet.HEADER);
                        assertTrue(Integer.reverseBytes(seq) == received[0], "frame " + received[0] + " came in order, got " + Integer.reverseBytes(seq));
                        received[0]++;
                    }
                    while (next[0] - received[0] < buffers.length) {
                        rxDriver.addChain(Buffer.writable(buffers[next[0] % buffers.length], 4096));
                        next[0]++;
                    }
                    net.process(VirtioNet.RX);
                });
                Thread.sleep(5);
            }
            assertEquals(VirtioNet.RX_FRAMES, received[0], "the queued frames reached the guest");
            Thread.sleep(100);
            transport.locked(() -> assertTrue(rxDriver.pollUsed() == null, "and nothing after them"));
        }
    }

    static void await(java.util.function.BooleanSupplier condition, long millis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("not within " + millis + " ms");
            }
            Thread.sleep(20);
        }
    }
}
