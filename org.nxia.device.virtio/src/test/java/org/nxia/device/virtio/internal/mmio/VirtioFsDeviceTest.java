package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.device.virtio.internal.fs.VirtioFsFactory;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.sys.Sys;
import org.nxia.device.virtio.internal.vhost.FuseClient;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.SharedRam;

/**
 * The virtio-fs device as a guest's driver sees it, with Debian's virtiofsd behind it and no VM:
 * "guest RAM" is a memfd shared with virtiofsd as a VM's is; the driver negotiates over the
 * virtio-mmio registers, kicks with QueueNotify, and gets the used-buffer interrupt when
 * virtiofsd has answered in guest RAM.
 */
class VirtioFsDeviceTest {

    static final long RAM = 16 << 20;
    static final String TEXT = "a file of the host's project directory\n";

    @TempDir
    Path dir;
    Arena arena;
    int memfd = -1;
    VirtioDevicesTest.Context ctx;
    Path shared;

    @BeforeEach
    void ram() throws IOException {
        arena = Arena.ofShared();
        memfd = Sys.memfd("guest-ram", RAM);
        MemorySegment ram = Sys.mapShared(memfd, RAM, arena);
        ctx = new VirtioDevicesTest.Context(GuestMemory.of(0, ram), List.of(new SharedRam(0, RAM, ram.address(), memfd, 0)));
        ctx.interrupts = true;
        shared = Files.createDirectories(dir.resolve("project"));
        Files.writeString(shared.resolve("README"), TEXT);
    }

    @AfterEach
    void close() {
        Sys.close(memfd);
        arena.close();
    }

    private Device create(String params) {
        return new VirtioFsFactory().create(DeviceConfig.parse("virtio-fs:path=" + shared + params), ctx);
    }

    @Test
    void aGuestDriverReadsAHostFileAndIsInterruptedForEachAnswer() throws Exception {
        Device device = create(",tag=project,sandbox=chroot,notify=mmio-exit");
        try {
            VirtioDevicesTest.Mmio m = new VirtioDevicesTest.Mmio(ctx.windows.getLast());
            assertEquals(26, m.r(VirtioMmioTransport.DEVICE_ID), "virtio-fs");
            byte[] tag = new byte[36];
            for (int i = 0; i < 36; i++) {
                tag[i] = (byte) m.dev.read(VirtioMmioTransport.CONFIG + i, 1);
            }
            assertEquals("project", new String(tag, StandardCharsets.UTF_8).replace("\0", ""));
            assertEquals(1, m.r(VirtioMmioTransport.CONFIG + 36), "num_request_queues");
            m.w(VirtioMmioTransport.SHM_SEL, 0);   // the DAX cache window's id: there is none
            assertEquals(-1, m.r(VirtioMmioTransport.SHM_LEN_LOW), "no shared memory region: its length reads as all ones");
            assertEquals(-1, m.r(VirtioMmioTransport.SHM_LEN_HIGH));

            assertTrue(m.negotiate(VirtioDevicesTest.F_VERSION_1));
            TestDriver hiprio = TestDriver.create(ctx.memory, 16, 0x100000);
            TestDriver requests = TestDriver.create(ctx.memory, 16, 0x200000);
            m.queue(0, hiprio, 16);
            m.queue(1, requests, 16);
            m.driverOk();

            FuseClient fuse = new FuseClient(requests, new FuseClient.Channel() {
                int pulses;

                @Override
                public void kick() {
                    pulses = ctx.pulses;
                    m.w(VirtioMmioTransport.QUEUE_NOTIFY, 1);
                }

                @Override
                public void awaitUsed(TestDriver d, int usedBefore) {
                    long deadline = System.nanoTime() + 10_000_000_000L;
                    // the answer, then the interrupt that tells of it (virtiofsd signals after it wrote)
                    while (d.usedIdx() == usedBefore || ctx.pulses == pulses) {
                        assertTrue(System.nanoTime() < deadline, "no answer and interrupt within 10 s: " + device.state());
                        Thread.onSpinWait();
                    }
                    assertEquals(1, m.r(VirtioMmioTransport.INTERRUPT_STATUS) & 1, "a used-buffer interrupt is pending");
                    m.w(VirtioMmioTransport.INTERRUPT_ACK, 1);
                }
            });
            assertEquals(7, fuse.init());
            long[] file = fuse.lookup("README");
            assertEquals(TEXT.length(), file[1]);
            assertEquals(TEXT, fuse.read(file[0], 4096));
            String state = device.state().toString();
            java.util.regex.Matcher passed = java.util.regex.Pattern.compile("kicksPassed=(\\d+)").matcher(state);
            assertTrue(passed.find() && Long.parseLong(passed.group(1)) >= 4, "each of the 4 requests' kicks went to virtiofsd: " + state);
            assertTrue(state.contains("kicksByExit=4") && state.contains("virtiofsdRunning=true") && state.contains("lastError=]"), state);
            assertFalse(m.needsReset());

            m.w(VirtioMmioTransport.STATUS, 0);   // the driver resets the device: virtiofsd stops the rings
            assertTrue(device.state().toString().contains("lastError=]"), device.state().toString());
        } finally {
            device.close();
        }
        assertTrue(device.state().toString().contains("virtiofsdRunning=false"), "closing the device stops virtiofsd: " + device.state());
        assertEquals(List.of(), Thread.getAllStackTraces().keySet().stream().map(Thread::getName)
                .filter(n -> n.startsWith("nxia-vm-test-virtio-fs-call-")).toList(), "no call thread outlives the device");
    }

    /**
     * A driver with EVENT_IDX (Linux's) kicks a queue only when {@code avail_event}, which
     * virtiofsd writes as it takes each chain, asks for it. The transport's queue takes no chain,
     * so its own index never moves: it published it over virtiofsd's on every kick it passed on,
     * and when that write came after virtiofsd's, the driver stopped kicking and the next request
     * waited forever (issue 14 §3: vm:exec --share hung in the rig, the guest idle in its mount).
     * A kick with nothing new (a driver may notify at any time) makes the order certain here.
     */
    @Test
    void aDriverWithEventIdxIsStillAskedToKickAfterVirtiofsdTookItsChains() throws Exception {
        Device device = create(",sandbox=chroot,notify=mmio-exit");
        try {
            VirtioDevicesTest.Mmio m = new VirtioDevicesTest.Mmio(ctx.windows.getLast());
            assertTrue(m.negotiate(VirtioDevicesTest.F_VERSION_1 | SplitQueue.F_EVENT_IDX));
            TestDriver hiprio = TestDriver.create(ctx.memory, 16, 0x100000);
            TestDriver requests = TestDriver.create(ctx.memory, 16, 0x200000);
            m.queue(0, hiprio, 16);
            m.queue(1, requests, 16);
            m.driverOk();
            int[] kicks = {0};
            FuseClient fuse = new FuseClient(requests, new FuseClient.Channel() {
                @Override
                public void kick() {
                    // vring_need_event(avail_event, new, old), as Linux's virtqueue_kick_prepare; one chain per request
                    int now = requests.availIdx();
                    if (((now - requests.availEvent() - 1) & 0xffff) < 1) {
                        kicks[0]++;
                        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 1);
                    }
                }

                @Override
                public void awaitUsed(TestDriver d, int usedBefore) {
                    long deadline = System.nanoTime() + 10_000_000_000L;
                    while (d.usedIdx() == usedBefore) {
                        assertTrue(System.nanoTime() < deadline, "request " + d.availIdx() + " not served within 10 s (" + kicks[0]
                                + " kicks; avail_event " + d.availEvent() + "): " + device.state());
                        Thread.onSpinWait();
                    }
                }
            });
            assertEquals(7, fuse.init());
            m.w(VirtioMmioTransport.QUEUE_NOTIFY, 1);
            assertEquals(1, requests.availEvent(), "avail_event is virtiofsd's: the next chain, past the one it took");
            long[] file = fuse.lookup("README");
            assertEquals(TEXT, fuse.read(file[0], 4096));
            // virtiofsd re-reads the ring after it publishes avail_event, so a chain that came before
            // that write is served without a kick (once in a fresh-clone CI run): every request served,
            // with kicks only where avail_event asked, is the outcome; a hang is the failure
            assertTrue(kicks[0] >= 1 && kicks[0] <= 4, kicks[0] + " kicks for 4 requests, each as avail_event asked");
            assertFalse(m.needsReset());
        } finally {
            device.close();
        }
    }

    @Test
    void aSnapshotOfAVmWithVirtioFsIsRefused() {
        Device device = create(",sandbox=chroot");
        try {
            assertThrows(UnsupportedOperationException.class, device::saveState);
        } finally {
            device.close();
        }
    }

    @Test
    void badParametersAndUnsharedRamAreRefusedSayingWhy() {
        for (String bad : new String[] {",cache=sometimes", ",sandbox=none", ",tag=" + "x".repeat(37)}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> create(bad).close(), bad);
            assertTrue(e.getMessage().contains("virtio-fs"), e.getMessage());
        }
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> new VirtioFsFactory().create(DeviceConfig.parse("virtio-fs:path=relative/dir"), ctx)).getMessage().contains("absolute"));
        VirtioDevicesTest.Context heap = new VirtioDevicesTest.Context();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new VirtioFsFactory().create(DeviceConfig.parse("virtio-fs:path=" + shared), heap));
        assertTrue(e.getMessage().contains("cannot be shared"), e.getMessage());
        assertTrue(ctx.windows.isEmpty(), "nothing was claimed for a refused device");
    }
}
