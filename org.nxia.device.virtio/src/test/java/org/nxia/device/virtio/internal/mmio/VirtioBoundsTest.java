package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.nxia.device.virtio.internal.console.VirtioConsoleFactory;
import org.nxia.device.virtio.internal.mmio.VirtioDevicesTest.Context;
import org.nxia.device.virtio.internal.mmio.VirtioDevicesTest.Mmio;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.device.virtio.internal.rng.VirtioRngFactory;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.SerialPort;

/** The bounds of the smaller virtio devices, driven past them (docs/limits.md). */
class VirtioBoundsTest {

    private final Context ctx = new Context();

    @Test
    void rngFillsAtMost64KiBOfAChain() {
        new VirtioRngFactory().create(DeviceConfig.parse("virtio-rng"), ctx);
        Mmio m = new Mmio(ctx.windows.getLast());
        assertTrue(m.negotiate(VirtioDevicesTest.F_VERSION_1));
        TestDriver d = TestDriver.create(ctx.memory, 16, 0x10000);
        m.queue(0, d, 16);
        m.driverOk();
        long buf = d.allocate(256 * 1024);
        d.addChain(new Buffer(buf, 256 * 1024, true));
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        TestDriver.Used used = d.pollUsed();
        assertNotNull(used);
        assertEquals(64 * 1024, used.length());
    }

    @Test
    void consoleKeepsAtMost1MiBOfHostInputForADriverThatNeverReads() {
        Device dev = new VirtioConsoleFactory().create(DeviceConfig.parse("virtio-console"), ctx);
        byte[] chunk = new byte[64 * 1024];
        for (int i = 0; i < 40; i++) {   // 2.5 MiB, no receive buffers posted
            ((SerialPort) dev).send(chunk);
        }
        String state = dev.state().toString();
        assertTrue(state.contains("pendingBytes=1048576"), state);
        assertTrue(state.contains("dropped=" + (40 - 16) * 64 * 1024), state);
    }
}
