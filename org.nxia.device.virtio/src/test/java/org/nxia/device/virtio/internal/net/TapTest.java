package org.nxia.device.virtio.internal.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.vmm.spi.GuestMemory;

/**
 * The TAP backend on a real interface (root with /dev/net/tun; skipped
 * elsewhere): a frame the guest sends is received by the host's interface
 * (its rx_packets counter), and what the host's stack sends on it once up
 * (IPv6 neighbour discovery) reaches the guest's receive buffers.
 */
class TapTest {

    static final String IF = "nxiatap" + ProcessHandle.current().pid() % 1000;

    @Test
    void aNameLongerThanIfnamsizIsRefusedClearly() {
        IOException e = assertThrows(IOException.class, () -> new Tun("a-name-of-sixteen"));
        assertTrue(e.getMessage().contains("1..15"), e.getMessage());
    }

    @Test
    void framesCrossAHostTapInterfaceBothWays() throws Exception {
        Tun tun;
        try {
            tun = new Tun(IF);
        } catch (IOException e) {
            assumeTrue(false, "no TAP here: " + e.getMessage());
            return;
        }
        GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[1 << 20]));
        TestDriver rxDriver = TestDriver.create(memory, 16, 0x1000);
        TestDriver txDriver = TestDriver.create(memory, 16, 0x80000);
        TxFrames tx = new TxFrames(8);
        VirtioNet net = new VirtioNet(memory, new byte[] {2, 0, 0, 0, 0, 2}, tx);
        VirtioMmioTransport transport = new VirtioMmioTransport("virtio-net", memory, net);
        transport.locked(() -> net.activate(1L << VirtioNet.F_MRG_RXBUF,
                new SplitQueue[] {rxDriver.newQueue(0), txDriver.newQueue(0)}));
        try (Tap tap = new Tap("test", tun, net, tx)) {
            tap.start(transport);
            Path sys = Path.of("/sys/class/net", IF);
            assertTrue(Files.isDirectory(sys), "the interface exists while the backend holds it");
            assumeTrue(new ProcessBuilder("ip", "link", "set", IF, "up").inheritIO().start().waitFor() == 0, "cannot set " + IF + " up");
            long before = Long.parseLong(Files.readString(sys.resolve("statistics/rx_packets")).strip());
            transport.locked(() -> {
                for (int i = 0; i < 4; i++) {
                    rxDriver.addChain(Buffer.writable(rxDriver.allocate(2048), 2048));
                }
                long at = txDriver.allocate(12 + 60);
                memory.write(at + 12, new byte[] {-1, -1, -1, -1, -1, -1, 2, 0, 0, 0, 0, 2, (byte) 0x88, (byte) 0xb5});   // local experimental ethertype
                txDriver.addChain(Buffer.readable(at, 12 + 60));
                net.process(VirtioNet.TX);
            });
            long deadline = System.currentTimeMillis() + 10_000;
            while (Long.parseLong(Files.readString(sys.resolve("statistics/rx_packets")).strip()) == before) {
                assertTrue(System.currentTimeMillis() < deadline, "the host's interface never received the guest's frame");
                Thread.sleep(20);
            }
            boolean[] got = new boolean[1];
            while (!got[0]) {
                assertTrue(System.currentTimeMillis() < deadline + 10_000, "nothing the host sent on " + IF + " reached the guest");
                transport.locked(() -> got[0] = rxDriver.pollUsed() != null);
                Thread.sleep(20);
            }
            assertEquals(1, transport.read(0x106, 2), "link up while the TAP is open");
        }
        assertTrue(!Files.exists(Path.of("/sys/class/net", IF)), "a non-persistent TAP goes away with its fd");
    }
}
