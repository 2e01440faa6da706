package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.device.virtio.internal.blk.VirtioBlkFactory;
import org.nxia.device.virtio.internal.console.VirtioConsoleFactory;
import org.nxia.device.virtio.internal.mmio.VirtioDevicesTest.Context;
import org.nxia.device.virtio.internal.mmio.VirtioDevicesTest.Mmio;
import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport.Saved;
import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport.SavedQueue;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.device.virtio.internal.queue.SplitQueueState;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.device.virtio.internal.rng.VirtioRngFactory;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.api.device.SerialPort;

/**
 * The virtio-mmio transport's saved state: saved, restored into a device freshly
 * created from the same configuration over the same guest RAM (as a restored VM
 * has it), read back through the guest's MMIO registers, and driven on.
 */
class VirtioSavedStateTest {

    static final long F_VERSION_1 = 1L << 32;

    private final Context ctx = new Context();

    private Device create(DeviceFactory factory, String spec) {
        return factory.create(DeviceConfig.parse(spec), ctx);
    }

    private static VirtioMmioTransport transport(Context ctx) {
        return (VirtioMmioTransport) ctx.windows.getLast();
    }

    /** Every register a driver can read, in one order, with each queue's QueueReady and QueueNumMax as selected. */
    static List<Integer> registers(Mmio m) {
        List<Integer> values = new ArrayList<>();
        for (int reg : new int[] {VirtioMmioTransport.MAGIC_VALUE, VirtioMmioTransport.VERSION, VirtioMmioTransport.DEVICE_ID,
                VirtioMmioTransport.VENDOR_ID, VirtioMmioTransport.DEVICE_FEATURES, VirtioMmioTransport.QUEUE_NUM_MAX,
                VirtioMmioTransport.QUEUE_READY, VirtioMmioTransport.INTERRUPT_STATUS, VirtioMmioTransport.STATUS,
                VirtioMmioTransport.CONFIG_GENERATION, VirtioMmioTransport.CONFIG, VirtioMmioTransport.CONFIG + 4}) {
            values.add(m.r(reg));
        }
        return values;
    }

    /** QueueReady of every queue, selecting each (this changes QueueSel). */
    static List<Integer> readyQueues(Mmio m, int queueCount) {
        List<Integer> ready = new ArrayList<>();
        for (int q = 0; q < queueCount; q++) {
            m.w(VirtioMmioTransport.QUEUE_SEL, q);
            ready.add(m.r(VirtioMmioTransport.QUEUE_READY));
        }
        return ready;
    }

    /** An rng a driver set up and used twice, with the device features' high word selected. */
    private TestDriver usedRng(Mmio m) {
        assertTrue(m.negotiate(F_VERSION_1 | SplitQueue.F_EVENT_IDX));
        TestDriver d = TestDriver.create(ctx.memory, 16, 0x10000);
        m.queue(0, d, 16);
        m.driverOk();
        for (int i = 0; i < 2; i++) {
            d.addChain(new Buffer(d.allocate(64), 64, true));
            m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
            assertNotNull(d.pollUsed());
        }
        m.w(VirtioMmioTransport.DEVICE_FEATURES_SEL, 1);
        return d;
    }

    @Test
    void rngRegistersReadBackEqualAndTheNextRequestIsServedFromTheRestoredIndex() {
        Device saved = create(new VirtioRngFactory(), "virtio-rng");
        Mmio before = new Mmio(transport(ctx));
        TestDriver d = usedRng(before);
        byte[] bytes = saved.saveState();

        Device restored = create(new VirtioRngFactory(), "virtio-rng");
        restored.restoreState(bytes);
        Mmio after = new Mmio(transport(ctx));
        List<Integer> expected = registers(before);
        assertEquals(expected, registers(after));
        assertEquals(1, expected.get(4), "DEVICE_FEATURES shows the high word: the select was restored");
        assertEquals(1, expected.get(6), "queue 0 is ready");
        assertEquals(VirtioMmioTransport.INT_USED_BUFFER, expected.get(7), "the used-buffer interrupt not yet acknowledged");
        assertEquals(VirtioMmioTransport.S_ACKNOWLEDGE | VirtioMmioTransport.S_DRIVER | VirtioMmioTransport.S_FEATURES_OK
                | VirtioMmioTransport.S_DRIVER_OK, expected.get(8));

        long buffer = d.allocate(32, (byte) 0);
        int head = d.addChain(new Buffer(buffer, 32, true));
        after.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        TestDriver.Used used = d.pollUsed();
        assertNotNull(used, "the restored device serves the chain made available after the snapshot");
        assertEquals(head, used.id());
        assertEquals(32, used.length());
        assertNull(d.pollUsed(), "and only it: the two served before the snapshot are not served again");
        assertEquals(3, d.usedIdx());
        assertNotEquals(0, ctx.memory.readLong(buffer) | ctx.memory.readLong(buffer + 8));
        assertFalse(after.needsReset());
        assertEquals(3, d.availEvent(), "EVENT_IDX restored: the device published avail_event from the restored index");
    }

    @Test
    void countersAreNotInTheSavedBytes() {
        Device saved = create(new VirtioRngFactory(), "virtio-rng");
        usedRng(new Mmio(transport(ctx)));
        byte[] bytes = saved.saveState();
        Device restored = create(new VirtioRngFactory(), "virtio-rng");
        restored.restoreState(bytes);
        VirtioMmioTransport.State counted = (VirtioMmioTransport.State) saved.state();
        VirtioMmioTransport.State fresh = (VirtioMmioTransport.State) restored.state();
        assertEquals(2, counted.kicksByExit());
        assertEquals(0, fresh.kicksByExit());
        assertNotEquals(counted.backend(), fresh.backend(), "the rng's bytes served differ");
        assertArrayEquals(bytes, restored.saveState(), "yet both save the same bytes");
    }

    @Test
    void aDriverHalfwayThroughNegotiationGoesOnWithItsFeatureSelect() {
        Device saved = create(new VirtioRngFactory(), "virtio-rng");
        Mmio before = new Mmio(transport(ctx));
        before.w(VirtioMmioTransport.STATUS, VirtioMmioTransport.S_ACKNOWLEDGE | VirtioMmioTransport.S_DRIVER);
        before.w(VirtioMmioTransport.DRIVER_FEATURES_SEL, 1);
        byte[] bytes = saved.saveState();

        Device restored = create(new VirtioRngFactory(), "virtio-rng");
        restored.restoreState(bytes);
        Mmio after = new Mmio(transport(ctx));
        after.w(VirtioMmioTransport.DRIVER_FEATURES, 1);   // the high word, as selected: VIRTIO_F_VERSION_1
        after.w(VirtioMmioTransport.STATUS, VirtioMmioTransport.S_ACKNOWLEDGE | VirtioMmioTransport.S_DRIVER
                | VirtioMmioTransport.S_FEATURES_OK);
        assertTrue((after.r(VirtioMmioTransport.STATUS) & VirtioMmioTransport.S_FEATURES_OK) != 0,
                "FEATURES_OK sticks: the write went to the selected high word");
    }

    @Test
    void consoleKeepsItsQueueSelectAndFillsAReceiveBufferPostedBeforeTheSnapshot() {
        Device saved = create(new VirtioConsoleFactory(), "virtio-console");
        Mmio before = new Mmio(transport(ctx));
        assertTrue(before.negotiate(F_VERSION_1));
        TestDriver rx = TestDriver.create(ctx.memory, 16, 0x10000);
        TestDriver tx = TestDriver.create(ctx.memory, 16, 0x20000);
        before.queue(0, rx, 16);
        before.queue(1, tx, 16);
        before.driverOk();
        long in = rx.allocate(64);
        rx.addChain(new Buffer(in, 64, true));
        before.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        long out = tx.allocate(3);
        ctx.memory.write(out, "one".getBytes(StandardCharsets.US_ASCII));
        tx.addChain(new Buffer(out, 3, false));
        before.w(VirtioMmioTransport.QUEUE_NOTIFY, 1);
        assertNotNull(tx.pollUsed());
        before.w(VirtioMmioTransport.QUEUE_SEL, 1);
        byte[] bytes = saved.saveState();

        Device restored = create(new VirtioConsoleFactory(), "virtio-console");
        restored.restoreState(bytes);
        Mmio after = new Mmio(transport(ctx));
        assertEquals(registers(before), registers(after));
        assertEquals(readyQueues(before, 2), readyQueues(after, 2));
        assertEquals(List.of(1, 1), readyQueues(after, 2));

        ((SerialPort) restored).send("ping".getBytes(StandardCharsets.US_ASCII));
        TestDriver.Used used = rx.pollUsed();
        assertNotNull(used, "host input lands in the buffer the driver posted before the snapshot");
        assertEquals(4, used.length());
        assertEquals("ping", new String(ctx.memory.read(in, 4), StandardCharsets.US_ASCII));
        ctx.memory.write(out, "two".getBytes(StandardCharsets.US_ASCII));
        tx.addChain(new Buffer(out, 3, false));
        after.w(VirtioMmioTransport.QUEUE_NOTIFY, 1);
        assertNotNull(tx.pollUsed());
        assertEquals("onetwo", ctx.console.toString(StandardCharsets.US_ASCII), "transmitted once each, not again");
    }

    /** A device bug: takes every chain the driver makes available and never answers it. */
    private static final class HoldingBackend extends OneQueueTestBackend {
        @Override
        public void process(int index) {
            while (queue.next() != null) {
                // held
            }
        }
    }

    @Test
    void aRequestInFlightRefusesTheSaveWithAClearErrorAndASavedOneTheRestore() {
        Mmio m = new Mmio(new VirtioMmioTransport("virtio-rng", ctx.memory, new HoldingBackend()));
        assertTrue(m.negotiate(F_VERSION_1));
        TestDriver d = TestDriver.create(ctx.memory, 16, 0x10000);
        m.queue(0, d, 16);
        m.driverOk();
        d.addChain(new Buffer(d.allocate(8), 8, true));
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        IllegalStateException refused = assertThrows(IllegalStateException.class, ((VirtioMmioTransport) m.dev)::saveState);
        assertTrue(refused.getMessage().contains("virtio-rng cannot be saved: queue 0 has 1 requests in flight (it must be quiesced)"),
                refused.getMessage());

        VirtioMmioTransport fresh = new VirtioMmioTransport("virtio-rng", ctx.memory, new HoldingBackend());
        Saved saved = fresh.saved();
        SavedQueue queue = new SavedQueue(16, d.descriptorTable(), d.availRing(), d.usedRing(),
                new SplitQueueState(16, d.descriptorTable(), d.availRing(), d.usedRing(), 0, 5, 3, false));
        byte[] inFlight = VirtioMmioTransport.encode("virtio-rng", withQueue(saved, queue, VirtioMmioTransport.S_ACKNOWLEDGE));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> fresh.restoreState(inFlight));
        assertTrue(e.getMessage().contains("queue 0 has 2 requests in flight"), e.getMessage());
    }

    private static Saved withQueue(Saved saved, SavedQueue queue, int status) {
        return new Saved(status, saved.driverFeatures(), saved.deviceFeaturesSel(), saved.driverFeaturesSel(), saved.queueSel(),
                saved.interruptStatus(), saved.configGeneration(), List.of(queue), saved.device());
    }

    @Test
    void hostileStatesAreRefusedAndLeaveTheDeviceAsCreated() {
        Device source = create(new VirtioRngFactory(), "virtio-rng");
        usedRng(new Mmio(transport(ctx)));
        byte[] good = source.saveState();
        Saved s = transport(ctx).saved();
        byte[] asCreated = create(new VirtioRngFactory(), "virtio-rng").saveState();

        record Hostile(byte[] bytes, String refusal) {
        }
        List<Hostile> hostile = new ArrayList<>();
        for (int n = 0; n < good.length; n++) {
            hostile.add(new Hostile(Arrays.copyOf(good, n), "truncated"));
        }
        hostile.add(new Hostile(Arrays.copyOf(good, good.length + 1), "1 bytes follow the last field"));
        byte[] version = good.clone();
        version[1 + "virtio-rng".length()] = 2;
        hostile.add(new Hostile(version, "version 2"));
        hostile.add(new Hostile(create(new VirtioConsoleFactory(), "virtio-console").saveState(), "saved state of 'virtio-console'"));
        hostile.add(new Hostile(VirtioMmioTransport.encode("virtio-rng", new Saved(s.status(), s.driverFeatures(), 0, 0, 0, 0, 0,
                List.of(s.queues().getFirst(), s.queues().getFirst()), s.device())), "2 queues saved; this device has 1"));
        SplitQueueState q = s.queues().getFirst().ready();
        long d = q.descriptorTable();
        long a = q.availRing();
        long u = q.usedRing();
        long f = q.features();
        for (Object[] bad : new Object[][] {
                {new SplitQueueState(24, d, a, u, f, 2, 2, false), "queue size 24 is not a power of two"},
                {new SplitQueueState(512, d, a, u, f, 2, 2, false), "exceeds the device's maximum 256"},
                {new SplitQueueState(16, 1L << 40, a, u, f, 2, 2, false), "descriptor table [0x10000000000"},
                {new SplitQueueState(16, d, (1 << 20) - 8, u, f, 2, 2, false), "available ring [0xffff8"},
                {new SplitQueueState(16, d, a, u + 2, f, 2, 2, false), "is not 4-byte aligned"},
                {new SplitQueueState(16, d, a, u, 1L << 7, 2, 2, false), "bits this queue does not implement"},
                {new SplitQueueState(16, d, a, u, f, 40, 2, false), "38 chains in flight"}}) {
            SplitQueueState state = (SplitQueueState) bad[0];
            hostile.add(new Hostile(VirtioMmioTransport.encode("virtio-rng", withQueue(s,
                    new SavedQueue(state.size(), state.descriptorTable(), state.availRing(), state.usedRing(), state), s.status())),
                    (String) bad[1]));
        }
        hostile.add(new Hostile(VirtioMmioTransport.encode("virtio-rng",
                new Saved(s.status(), s.driverFeatures() | (1L << 7), 0, 0, 0, 0, 0, s.queues(), s.device())), "include 0x80, never offered"));
        hostile.add(new Hostile(VirtioMmioTransport.encode("virtio-rng",
                new Saved(s.status(), s.driverFeatures() & ~F_VERSION_1, 0, 0, 0, 0, 0, s.queues(), s.device())), "lack VIRTIO_F_VERSION_1"));
        hostile.add(new Hostile(VirtioMmioTransport.encode("virtio-rng",
                new Saved(VirtioMmioTransport.S_DRIVER_OK, 0, 0, 0, 0, 0, 0, s.queues(), s.device())), "DRIVER_OK without FEATURES_OK"));
        hostile.add(new Hostile(VirtioMmioTransport.encode("virtio-rng",
                new Saved(s.status(), s.driverFeatures(), 0, 0, 0, 4, 0, s.queues(), s.device())), "interrupt status 0x4"));
        hostile.add(new Hostile(VirtioMmioTransport.encode("virtio-rng", new Saved(s.status(), s.driverFeatures(), 0, 0, 0, 0, 0,
                s.queues(), new byte[] {1})), "device state: 1 bytes of device state for a device that saves none"));
        byte[] badBoolean = good.clone();
        badBoolean[badBoolean.length - 5] = 2;   // the queue's broken flag, before the (empty) device state's length
        hostile.add(new Hostile(badBoolean, "not 0 or 1"));

        for (Hostile bad : hostile) {
            Device fresh = create(new VirtioRngFactory(), "virtio-rng");
            Mmio m = new Mmio(transport(ctx));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> fresh.restoreState(bad.bytes()),
                    () -> Arrays.toString(bad.bytes()));
            assertTrue(e.getMessage().startsWith("saved state of virtio-rng refused: ") && e.getMessage().contains(bad.refusal()),
                    e.getMessage() + " should say " + bad.refusal());
            assertArrayEquals(asCreated, fresh.saveState(), () -> "as created after " + bad.refusal());
            assertEquals(0, m.r(VirtioMmioTransport.STATUS));
            assertEquals(0, m.r(VirtioMmioTransport.QUEUE_READY));
        }
    }

    /** A blk read of one sector into a fresh buffer; returns the status byte and fills {@code data}. */
    private int readSector(Mmio m, TestDriver d, long sector, byte[] data) {
        long header = d.allocate(16);
        ctx.memory.writeInt(header, 0);
        ctx.memory.writeLong(header + 8, sector);
        long buffer = d.allocate(data.length);
        long status = d.allocate(1, (byte) 0xee);
        d.addChain(new Buffer(header, 16, false), new Buffer(buffer, data.length, true), new Buffer(status, 1, true));
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        assertNotNull(d.pollUsed());
        System.arraycopy(ctx.memory.read(buffer, data.length), 0, data, 0, data.length);
        return ctx.memory.readByte(status);
    }

    @Test
    void blkKeepsItsImageByConfigurationAndReadsOnAfterRestore(@TempDir Path dir) throws Exception {
        Path disk = dir.resolve("disk.img");
        byte[] image = new byte[8 * 512];
        for (int i = 0; i < image.length; i++) {
            image[i] = (byte) (i * 13 + 1);
        }
        Files.write(disk, image);
        String spec = "virtio-blk:path=" + disk + ",ro=true";
        Device saved = create(new VirtioBlkFactory(), spec);
        Mmio before = new Mmio(transport(ctx));
        assertTrue(before.negotiate(F_VERSION_1 | (1L << 5)));
        TestDriver d = TestDriver.create(ctx.memory, 16, 0x10000);
        before.queue(0, d, 16);
        before.driverOk();
        byte[] sector = new byte[512];
        assertEquals(0, readSector(before, d, 1, sector));
        byte[] bytes = saved.saveState();
        saved.close();

        Files.write(disk, new byte[512], java.nio.file.StandardOpenOption.APPEND);
        try (Device grown = create(new VirtioBlkFactory(), spec)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> grown.restoreState(bytes));
            assertTrue(e.getMessage().contains("the guest knows a disk of 8 sectors; the image now has 9"), e.getMessage());
        }
        Files.write(disk, image);
        try (Device restored = create(new VirtioBlkFactory(), spec)) {
            restored.restoreState(bytes);
            assertArrayEquals(bytes, restored.saveState(), "the read counted before the snapshot is not in the bytes");
            Mmio after = new Mmio(transport(ctx));
            assertEquals(registers(before), registers(after));
            assertEquals(8, after.r(VirtioMmioTransport.CONFIG), "capacity in sectors, from the image");
            assertEquals(0, readSector(after, d, 7, sector));
            assertArrayEquals(Arrays.copyOfRange(image, 7 * 512, 8 * 512), sector);
            assertEquals(2, d.usedIdx(), "served from the restored index: one request before, one after");
        }
    }

    @Test
    void aDeviceADriverAlreadyTouchedIsNotRestored() {
        Device source = create(new VirtioRngFactory(), "virtio-rng");
        byte[] bytes = source.saveState();
        new Mmio(transport(ctx)).w(VirtioMmioTransport.STATUS, VirtioMmioTransport.S_ACKNOWLEDGE);
        assertThrows(IllegalStateException.class, () -> source.restoreState(bytes));
    }
}
