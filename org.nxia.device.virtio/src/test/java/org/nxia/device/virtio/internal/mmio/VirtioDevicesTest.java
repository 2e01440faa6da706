package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.device.virtio.internal.DirtyPages;
import org.nxia.device.virtio.internal.blk.VirtioBlkFactory;
import org.nxia.device.virtio.internal.console.VirtioConsoleFactory;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.device.virtio.internal.rng.VirtioRngFactory;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.SharedRam;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;
import org.nxia.vmm.api.device.SerialPort;

/**
 * The virtio-mmio transport and devices driven register by register, on heap memory (no KVM).
 * Its {@link Context} and {@link Mmio} serve the device packages' tests too.
 */
public class VirtioDevicesTest {

    public static final long F_VERSION_1 = 1L << 32;

    /** A DeviceContext over one heap memory that keeps the claimed windows and the console. */
    public static final class Context implements DeviceContext {
        public final GuestMemory memory;
        /** What {@link #sharedRam()} hands out: none for heap memory. */
        final List<SharedRam> shared;
        public final List<MmioDevice> windows = new ArrayList<>();
        final ByteArrayOutputStream console = new ByteArrayOutputStream();
        /** Whether the VM has interrupts; pulses on the one line it hands out. */
        public boolean interrupts;
        public volatile int pulses;

        Context() {
            this(GuestMemory.of(0, MemorySegment.ofArray(new byte[1 << 20])), List.of());
        }

        public Context(GuestMemory memory, List<SharedRam> shared) {
            this.memory = memory;
            this.shared = shared;
        }

        @Override
        public List<SharedRam> sharedRam() {
            return shared;
        }

        @Override
        public Optional<InterruptLine> claimIrq() {
            return !interrupts ? Optional.empty() : Optional.of(new InterruptLine() {
                @Override
                public int gsi() {
                    return 5;
                }

                @Override
                public void set(boolean asserted) {
                    throw new AssertionError("virtio-mmio pulses, it does not hold a level");
                }

                @Override
                public void pulse() {
                    pulses++;
                }
            });
        }

        @Override
        public String vmId() {
            return "vm-test";
        }

        @Override
        public GuestMemory memory() {
            return memory;
        }

        @Override
        public void claimPorts(int first, int count, PortDevice device) {
            throw new UnsupportedOperationException();
        }

        @Override
        public long claimMmio(long size, MmioDevice device) {
            windows.add(device);
            return 0xd000_0000L + 0x1000L * (windows.size() - 1);
        }

        @Override
        public void console(byte[] bytes, int offset, int length) {
            console.write(bytes, offset, length);
        }

        @Override
        public void exit(int status) {
        }

        @Override
        public void reset(String how) {
        }

        @Override
        public void fail(String reason) {
        }
    }

    /** Drives one virtio-mmio window like a guest driver would. */
    public static final class Mmio {
        final MmioDevice dev;

        public Mmio(MmioDevice dev) {
            this.dev = dev;
        }

        public int r(int reg) {
            return (int) dev.read(reg, 4);
        }

        public void w(int reg, long v) {
            dev.write(reg, 4, v & 0xffff_ffffL);
        }

        /** Reset, ACK, DRIVER, features, FEATURES_OK; returns whether FEATURES_OK stuck. */
        public boolean negotiate(long features) {
            w(VirtioMmioTransport.STATUS, 0);
            w(VirtioMmioTransport.STATUS, VirtioMmioTransport.S_ACKNOWLEDGE | VirtioMmioTransport.S_DRIVER);
            w(VirtioMmioTransport.DRIVER_FEATURES_SEL, 0);
            w(VirtioMmioTransport.DRIVER_FEATURES, features);
            w(VirtioMmioTransport.DRIVER_FEATURES_SEL, 1);
            w(VirtioMmioTransport.DRIVER_FEATURES, features >>> 32);
            w(VirtioMmioTransport.STATUS, VirtioMmioTransport.S_ACKNOWLEDGE | VirtioMmioTransport.S_DRIVER | VirtioMmioTransport.S_FEATURES_OK);
            return (r(VirtioMmioTransport.STATUS) & VirtioMmioTransport.S_FEATURES_OK) != 0;
        }

        public void queue(int index, TestDriver d, int num) {
            w(VirtioMmioTransport.QUEUE_SEL, index);
            w(VirtioMmioTransport.QUEUE_NUM, num);
            w(VirtioMmioTransport.QUEUE_DESC_LOW, d.descriptorTable());
            w(VirtioMmioTransport.QUEUE_DESC_HIGH, d.descriptorTable() >>> 32);
            w(VirtioMmioTransport.QUEUE_DRIVER_LOW, d.availRing());
            w(VirtioMmioTransport.QUEUE_DRIVER_HIGH, d.availRing() >>> 32);
            w(VirtioMmioTransport.QUEUE_DEVICE_LOW, d.usedRing());
            w(VirtioMmioTransport.QUEUE_DEVICE_HIGH, d.usedRing() >>> 32);
            w(VirtioMmioTransport.QUEUE_READY, 1);
        }

        public void driverOk() {
            w(VirtioMmioTransport.STATUS, r(VirtioMmioTransport.STATUS) | VirtioMmioTransport.S_DRIVER_OK);
        }

        /** QueueNotify for {@code queue}. */
        public void kick(int queue) {
            w(VirtioMmioTransport.QUEUE_NOTIFY, queue);
        }

        public int interruptStatus() {
            return r(VirtioMmioTransport.INTERRUPT_STATUS);
        }

        public boolean needsReset() {
            return (r(VirtioMmioTransport.STATUS) & VirtioMmioTransport.S_NEEDS_RESET) != 0;
        }
    }

    private final Context ctx = new Context();

    private Mmio create(DeviceFactory factory, String spec) {
        Device d = factory.create(DeviceConfig.parse(spec), ctx);
        assertNotNull(d.state());
        return new Mmio(ctx.windows.getLast());
    }

    private TestDriver driver(long start) {
        return TestDriver.create(ctx.memory, 16, start);
    }

    @Test
    void transportIdentifiesItselfAsVirtioMmioVersion2() {
        Mmio m = create(new VirtioRngFactory(), "virtio-rng");
        assertEquals(0x74726976, m.r(VirtioMmioTransport.MAGIC_VALUE));
        assertEquals(2, m.r(VirtioMmioTransport.VERSION));
        assertEquals(4, m.r(VirtioMmioTransport.DEVICE_ID));
        m.w(VirtioMmioTransport.DEVICE_FEATURES_SEL, 1);
        assertEquals(1, m.r(VirtioMmioTransport.DEVICE_FEATURES) & 1, "VIRTIO_F_VERSION_1 offered");
    }

    @Test
    void rngFillsWritableBuffers() {
        Mmio m = create(new VirtioRngFactory(), "virtio-rng");
        assertTrue(m.negotiate(F_VERSION_1));
        TestDriver d = driver(0x10000);
        m.queue(0, d, 16);
        m.driverOk();
        long buf = d.allocate(64);
        d.addChain(new Buffer(buf, 64, true));
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        TestDriver.Used used = d.pollUsed();
        assertNotNull(used);
        assertEquals(64, used.length());
        assertNotEquals(0, ctx.memory.readLong(buf) | ctx.memory.readLong(buf + 8));
        assertTrue(!m.needsReset());
    }

    @Test
    void blkWritesFlushesAndReadsBackAndRefusesOutOfRange(@TempDir Path dir) throws Exception {
        Path disk = dir.resolve("disk.img");
        DirtyPages.assumeWriteback(disk);
        Files.write(disk, new byte[64 * 1024]);
        try (FileChannel f = FileChannel.open(disk)) {
            f.force(false);  // the zeros on disk: from here, only the guest's write dirties the file
        }
        Mmio m = create(new VirtioBlkFactory(), "virtio-blk:path=" + disk);
        assertEquals(128, m.dev.read(0x100, 8), "capacity in sectors");
        assertTrue(m.negotiate(F_VERSION_1 | (1L << 9)));
        TestDriver d = driver(0x10000);
        m.queue(0, d, 16);
        m.driverOk();
        byte[] pattern = new byte[1024];
        for (int i = 0; i < pattern.length; i++) {
            pattern[i] = (byte) (i * 7 + 3);
        }
        assertEquals(0, request(m, d, 1, 8, pattern, false));
        try (Arena arena = Arena.ofConfined(); FileChannel f = FileChannel.open(disk)) {
            // A read-only view of the image: smaps shows how much of its page cache is not yet on disk.
            MemorySegment image = f.map(FileChannel.MapMode.READ_ONLY, 0, f.size(), arena);
            assertEquals(pattern[5], image.get(ValueLayout.JAVA_BYTE, 8 * 512 + 5), "the write reached the image file");
            assertTrue(DirtyPages.dirtyBytes(image) >= 4096, "the write is in the page cache, not yet on disk");
            assertEquals(0, request(m, d, 4, 0, null, false));
            assertEquals(0, DirtyPages.dirtyBytes(image), "the flush wrote it to disk (fdatasync)");
        }
        byte[] back = new byte[1024];
        assertEquals(0, request(m, d, 0, 8, back, true));
        assertArrayEquals(pattern, back);
        byte[] onDisk = Files.readAllBytes(disk);
        assertEquals(pattern[5], onDisk[8 * 512 + 5], "the write reached the image file");
        assertEquals(1, request(m, d, 0, 127, new byte[1024], true), "a read past the end is an I/O error");
        assertEquals(1, request(m, d, 0, Long.MAX_VALUE / 256, new byte[512], true), "a huge sector is an I/O error");
        assertEquals(2, request(m, d, 99, 0, null, false), "an unknown type is unsupported");
    }

    @Test
    void blkTakesAFileOrABlockDeviceNothingElse() {
        // block devices are tested in the rig (RootfsTest hands the VMM the rig's /dev/vdb)
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> create(new VirtioBlkFactory(), "virtio-blk:path=/dev/null,ro=true"));
        assertTrue(e.getMessage().contains("/dev/null is not a file or a block device"), e.getMessage());
    }

    @Test
    void blkReadOnlyRefusesWrites(@TempDir Path dir) throws Exception {
        Path disk = dir.resolve("ro.img");
        Files.write(disk, new byte[4096]);
        Mmio m = create(new VirtioBlkFactory(), "virtio-blk:path=" + disk + ",ro=true");
        m.w(VirtioMmioTransport.DEVICE_FEATURES_SEL, 0);
        assertEquals(1 << 5, m.r(VirtioMmioTransport.DEVICE_FEATURES) & (1 << 5), "VIRTIO_BLK_F_RO offered");
        assertTrue(m.negotiate(F_VERSION_1 | (1L << 5)));
        TestDriver d = driver(0x10000);
        m.queue(0, d, 16);
        m.driverOk();
        assertEquals(1, request(m, d, 1, 0, new byte[512], false));
        assertEquals(0, request(m, d, 0, 0, new byte[512], true));
    }

    /** One blk request: header, optional data, status; returns the status byte. */
    private int request(Mmio m, TestDriver d, int type, long sector, byte[] data, boolean read) {
        d.resetData();
        long header = d.allocate(16);
        ctx.memory.writeInt(header, type);
        ctx.memory.writeLong(header + 8, sector);
        long status = d.allocate(1, (byte) 0xee);
        if (data == null) {
            d.addChain(new Buffer(header, 16, false), new Buffer(status, 1, true));
        } else {
            long buf = d.allocate(data.length);
            if (!read) {
                ctx.memory.write(buf, data);
            }
            d.addChain(new Buffer(header, 16, false), new Buffer(buf, data.length, read), new Buffer(status, 1, true));
            m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
            assertNotNull(d.pollUsed());
            if (read) {
                System.arraycopy(ctx.memory.read(buf, data.length), 0, data, 0, data.length);
            }
            return ctx.memory.readByte(status);
        }
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        assertNotNull(d.pollUsed());
        return ctx.memory.readByte(status);
    }

    @Test
    void consoleTransmitsToTheVmConsoleAndReceivesFromTheHost() {
        Device dev = new VirtioConsoleFactory().create(DeviceConfig.parse("virtio-console"), ctx);
        Mmio m = new Mmio(ctx.windows.getLast());
        assertTrue(m.negotiate(F_VERSION_1));
        TestDriver rx = driver(0x10000);
        TestDriver tx = driver(0x20000);
        m.queue(0, rx, 16);
        m.queue(1, tx, 16);
        m.driverOk();
        long in = rx.allocate(64);
        rx.addChain(new Buffer(in, 64, true));
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        long out = tx.allocate(3);
        ctx.memory.write(out, "hi\n".getBytes(StandardCharsets.US_ASCII));
        tx.addChain(new Buffer(out, 3, false));
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 1);
        assertEquals("hi\n", ctx.console.toString(StandardCharsets.US_ASCII));
        ((SerialPort) dev).send("ping\n".getBytes(StandardCharsets.US_ASCII));
        TestDriver.Used used = rx.pollUsed();
        assertNotNull(used, "host input lands in the posted receive buffer at once");
        assertEquals(5, used.length());
        assertEquals("ping\n", new String(ctx.memory.read(in, 5), StandardCharsets.US_ASCII));
    }

    @Test
    void usedBuffersAndNeedsResetPulseTheLineWhereTheVmHasOne() {
        ctx.interrupts = true;
        Mmio m = create(new VirtioRngFactory(), "virtio-rng");
        assertTrue(m.negotiate(F_VERSION_1));
        TestDriver d = driver(0x10000);
        m.queue(0, d, 16);
        m.driverOk();
        d.addChain(new Buffer(d.allocate(16), 16, true));
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        assertEquals(1, ctx.pulses);
        assertEquals(VirtioMmioTransport.INT_USED_BUFFER, m.r(VirtioMmioTransport.INTERRUPT_STATUS));
        m.w(VirtioMmioTransport.INTERRUPT_ACK, VirtioMmioTransport.INT_USED_BUFFER);
        assertEquals(0, m.r(VirtioMmioTransport.INTERRUPT_STATUS));
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 7);
        assertTrue(m.needsReset());
        assertEquals(2, ctx.pulses);
        assertEquals(VirtioMmioTransport.INT_CONFIG_CHANGE, m.r(VirtioMmioTransport.INTERRUPT_STATUS));
    }

    @Test
    void notifyBeforeDriverOkNeedsReset() {
        Mmio m = create(new VirtioRngFactory(), "virtio-rng");
        assertTrue(m.negotiate(F_VERSION_1));
        m.queue(0, driver(0x10000), 16);
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        assertTrue(m.needsReset());
    }

    @Test
    void featuresNeverOfferedAreRefused() {
        Mmio m = create(new VirtioRngFactory(), "virtio-rng");
        assertTrue(!m.negotiate(F_VERSION_1 | (1L << 7)), "FEATURES_OK must not stick");
        assertTrue(!m.negotiate(0), "a legacy (pre-1.0) driver is refused");
    }

    @Test
    void aQueueSizeThatIsNotAPowerOfTwoNeedsResetAndStaysUnready() {
        Mmio m = create(new VirtioRngFactory(), "virtio-rng");
        assertTrue(m.negotiate(F_VERSION_1));
        m.queue(0, driver(0x10000), 3);
        assertEquals(0, m.r(VirtioMmioTransport.QUEUE_READY));
        assertTrue(m.needsReset());
    }

    @Test
    void aDescriptorOutsideRamBreaksTheDeviceUntilReset() {
        Mmio m = create(new VirtioRngFactory(), "virtio-rng");
        assertTrue(m.negotiate(F_VERSION_1));
        TestDriver d = driver(0x10000);
        m.queue(0, d, 16);
        m.driverOk();
        d.addChain(new Buffer(0x7fff_0000_0000L, 64, true));
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        assertTrue(m.needsReset());
        // after a reset the device works again
        assertTrue(m.negotiate(F_VERSION_1));
        TestDriver fresh = driver(0x30000);
        m.queue(0, fresh, 16);
        m.driverOk();
        fresh.addChain(new Buffer(fresh.allocate(32), 32, true));
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        assertNotNull(fresh.pollUsed());
        assertTrue(!m.needsReset());
    }
}
