package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;
import org.nxia.device.virtio.internal.mmio.VirtioDevicesTest.Mmio;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.device.virtio.internal.rng.VirtioRngFactory;
import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;

/**
 * Kicks through a doorbell (what KVM's ioeventfd gives a device), on heap
 * memory: served on the device's notify thread, closed on reset, on
 * DEVICE_NEEDS_RESET and when the VM stops, and MMIO exits where the VM has
 * no doorbells. The rig test (MicroVmTest) does the same on real ioeventfds.
 */
class VirtioDoorbellTest {

    static final long WINDOW = 0xd000_0000L;
    static final long F_VERSION_1 = 1L << 32;

    /** A doorbell the test rings as the guest would: counts, and wakes the one waiter. */
    static final class TestDoorbell implements Doorbell {
        private final long address;
        private final int length;
        private long count;
        private boolean closed;

        TestDoorbell(long address, int length) {
            this.address = address;
            this.length = length;
        }

        /** A guest write; a closed doorbell lets it exit instead, so it is not counted. */
        synchronized void ring() {
            if (!closed) {
                count++;
                notifyAll();
            }
        }

        synchronized boolean isClosed() {
            return closed;
        }

        @Override
        public long address() {
            return address;
        }

        @Override
        public int length() {
            return length;
        }

        @Override
        public synchronized long await() {
            while (count == 0 && !closed) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return 0;
                }
            }
            if (closed) {
                return 0;
            }
            long n = count;
            count = 0;
            return n;
        }

        @Override
        public synchronized void close() {
            closed = true;
            notifyAll();
        }
    }

    /** A VM on heap memory that offers doorbells (or not) and keeps every one it handed out. */
    static final class Context implements DeviceContext {
        final GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[1 << 20]));
        final List<TestDoorbell> doorbells = new ArrayList<>();
        boolean offersDoorbells = true;
        MmioDevice window;
        volatile String failed;

        synchronized TestDoorbell last() {
            return doorbells.getLast();
        }

        synchronized long openDoorbells() {
            return doorbells.stream().filter(d -> !d.isClosed()).count();
        }

        @Override
        public synchronized Optional<Doorbell> createDoorbell(long address, int length) {
            if (!offersDoorbells) {
                return Optional.empty();
            }
            TestDoorbell bell = new TestDoorbell(address, length);
            doorbells.add(bell);
            return Optional.of(bell);
        }

        @Override
        public String vmId() {
            return "vm-bell";
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
            window = device;
            return WINDOW;
        }

        @Override
        public void console(byte[] bytes, int offset, int length) {
        }

        @Override
        public void exit(int status) {
        }

        @Override
        public void reset(String how) {
        }

        @Override
        public void fail(String reason) {
            failed = reason;
        }
    }

    private final Context ctx = new Context();

    private VirtioMmioTransport rng(String spec) {
        Device device = new VirtioRngFactory().create(DeviceConfig.parse(spec), ctx);
        return (VirtioMmioTransport) device;
    }

    /** Negotiates, sets up queue 0 on a fresh driver at {@code start} and sets DRIVER_OK. */
    private TestDriver ready(Mmio m, long start) {
        assertTrue(m.negotiate(F_VERSION_1));
        TestDriver d = TestDriver.create(ctx.memory, 16, start);
        m.queue(0, d, 16);
        m.driverOk();
        return d;
    }

    private static TestDriver.Used awaitUsed(TestDriver d) throws InterruptedException {
        long end = System.nanoTime() + 10_000_000_000L;
        TestDriver.Used used;
        while ((used = d.pollUsed()) == null) {
            if (System.nanoTime() > end) {
                throw new AssertionError("the device did not return the chain within 10 s");
            }
            Thread.sleep(1);
        }
        return used;
    }

    private static void awaitTrue(String what, java.util.function.BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + 10_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError(what + " within 10 s");
            }
            Thread.sleep(1);
        }
    }

    private static Thread notifyThread() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().equals("nxia-vm-bell-virtio-rng-notify")).findFirst().orElse(null);
    }

    private static VirtioMmioTransport.State state(VirtioMmioTransport t) {
        return (VirtioMmioTransport.State) t.state();
    }

    @Test
    void kickOnTheDoorbellIsServedByTheNotifyThreadWithoutAnExit() throws Exception {
        VirtioMmioTransport t = rng("virtio-rng");
        Mmio m = new Mmio(ctx.window);
        TestDriver d = ready(m, 0x10000);
        TestDoorbell bell = ctx.last();
        assertEquals(WINDOW + VirtioMmioTransport.QUEUE_NOTIFY, bell.address(), "the doorbell sits on QueueNotify");
        assertEquals(4, bell.length());
        long buf = d.allocate(64);
        d.addChain(Buffer.writable(buf, 64));
        bell.ring();
        assertEquals(64, awaitUsed(d).length());
        VirtioMmioTransport.State s = state(t);
        assertEquals("ioeventfd", s.notifyPath());
        assertEquals(1, s.kicksByDoorbell());
        assertEquals(0, s.kicksByExit());
        assertNotNull(notifyThread());
        t.close();
        assertTrue(bell.isClosed());
        assertEquals(null, notifyThread(), "close ends the notify thread");
    }

    @Test
    void aDeviceRestoredWithDriverOkArmsItsDoorbellAndServesKicksOnIt() throws Exception {
        VirtioMmioTransport saved = rng("virtio-rng");
        TestDriver d = ready(new Mmio(ctx.window), 0x10000);
        byte[] bytes = saved.saveState();
        saved.close();

        VirtioMmioTransport restored = rng("virtio-rng");
        int before = ctx.doorbells.size();
        restored.restoreState(bytes);
        assertEquals(before + 1, ctx.doorbells.size(), "restoring DRIVER_OK puts a doorbell on QueueNotify, as DRIVER_OK does");
        TestDoorbell bell = ctx.last();
        assertEquals(WINDOW + VirtioMmioTransport.QUEUE_NOTIFY, bell.address());
        d.addChain(Buffer.writable(d.allocate(64), 64));
        bell.ring();
        assertEquals(64, awaitUsed(d).length());
        assertEquals("ioeventfd", state(restored).notifyPath());
        assertEquals(1, state(restored).kicksByDoorbell());
        restored.close();
    }

    @Test
    void resetAndNeedsResetCloseTheDoorbellAndKicksExitAgain() throws Exception {
        VirtioMmioTransport t = rng("virtio-rng");
        Mmio m = new Mmio(ctx.window);
        ready(m, 0x10000);
        TestDoorbell first = ctx.last();
        m.w(VirtioMmioTransport.STATUS, 0);
        assertTrue(first.isClosed(), "a reset closes the doorbell");
        assertEquals("mmio-exit", state(t).notifyPath());
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        assertTrue(m.needsReset(), "before DRIVER_OK a kick exits, and is refused there");

        TestDriver d = ready(m, 0x20000);
        TestDoorbell second = ctx.last();
        assertFalse(second.isClosed());
        d.setAvailIdx(16 + 5);   // a hostile jump past the queue size
        second.ring();
        awaitTrue("DEVICE_NEEDS_RESET after a bad ring served by doorbell", m::needsReset);
        assertTrue(second.isClosed(), "DEVICE_NEEDS_RESET closes the doorbell");
        assertTrue(state(t).lastError().contains("available index"), state(t).lastError());

        TestDriver again = ready(m, 0x30000);
        long buf = again.allocate(64);
        again.addChain(Buffer.writable(buf, 64));
        ctx.last().ring();
        assertEquals(64, awaitUsed(again).length(), "after a reset the device works through a new doorbell");
        assertEquals(3, ctx.doorbells.size());
        assertEquals(1, ctx.openDoorbells(), "one doorbell open at a time");
        t.close();
        assertEquals(0, ctx.openDoorbells());
        assertEquals(null, notifyThread());
    }

    @Test
    void theVmClosingTheDoorbellEndsTheNotifyThread() throws Exception {
        VirtioMmioTransport t = rng("virtio-rng");
        ready(new Mmio(ctx.window), 0x10000);
        assertNotNull(notifyThread());
        ctx.last().close();   // what the VM does when it stops
        awaitTrue("the notify thread ends", () -> notifyThread() == null);
        assertEquals("ioeventfd", state(t).notifyPath(), "the state still says which path the kicks took");
        t.close();
    }

    @Test
    void aDeviceBugOnTheNotifyThreadEndsTheVmAsItWouldOnTheVcpu() throws Exception {
        VirtioBackend buggy = new SingleQueueBackend() {
            @Override
            public int deviceId() {
                return 4;
            }

            @Override
            public long features() {
                return 0;
            }

            @Override
            public long readConfig(int offset, int size) {
                return 0;
            }

            @Override
            protected long serve(org.nxia.device.virtio.internal.queue.DescriptorChain chain) {
                throw new IllegalStateException("device bug");
            }

            @Override
            public Record state() {
                return null;
            }
        };
        VirtioMmioTransport t = VirtioMmioTransport.attach(ctx, "virtio-rng", buggy);
        TestDriver d = ready(new Mmio(ctx.window), 0x10000);
        d.addChain(Buffer.writable(d.allocate(64), 64));
        ctx.last().ring();
        awaitTrue("the VM is told to fail", () -> ctx.failed != null);
        assertEquals("virtio-rng: serving a kick failed: java.lang.IllegalStateException: device bug", ctx.failed);
        awaitTrue("the notify thread ends", () -> notifyThread() == null);
        t.close();
    }

    @Test
    void withoutDoorbellsKicksAreMmioExitsServedOnTheCallingThread() {
        ctx.offersDoorbells = false;
        VirtioMmioTransport t = rng("virtio-rng");
        Mmio m = new Mmio(ctx.window);
        TestDriver d = ready(m, 0x10000);
        d.addChain(Buffer.writable(d.allocate(64), 64));
        m.w(VirtioMmioTransport.QUEUE_NOTIFY, 0);
        assertEquals(64, d.pollUsed().length(), "served before the exit returns");
        VirtioMmioTransport.State s = state(t);
        assertEquals("mmio-exit", s.notifyPath());
        assertEquals("the VM has no doorbells", s.noDoorbell());
        assertEquals(1, s.kicksByExit());
        assertEquals(null, notifyThread(), "no thread without a doorbell");
        t.close();
    }

    @Test
    void notifyMmioExitAsksForNoDoorbell() {
        VirtioMmioTransport t = rng("virtio-rng:notify=mmio-exit");
        ready(new Mmio(ctx.window), 0x10000);
        assertTrue(ctx.doorbells.isEmpty());
        assertEquals("notify=mmio-exit asked", state(t).noDoorbell());
        t.close();
    }

    @Test
    void unknownNotifyPathIsRefusedInOneLine() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> rng("virtio-rng:notify=poll"));
        assertTrue(e.getMessage().startsWith("device virtio-rng: notify=poll is not a notify path; give notify=ioeventfd"), e.getMessage());
    }

    /**
     * The vCPU thread resets and sets the device up again and again while the
     * guest keeps ringing: every request made after DRIVER_OK is served, and no
     * ring lands on a queue being set up (that would set DEVICE_NEEDS_RESET or throw).
     */
    @Test
    void setupAndResetOnTheVcpuThreadRaceKicksSafely() throws Exception {
        VirtioMmioTransport t = rng("virtio-rng");
        Mmio m = new Mmio(ctx.window);
        AtomicBoolean running = new AtomicBoolean(true);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread ringer = Thread.ofPlatform().start(() -> {
            try {
                while (running.get()) {
                    TestDoorbell bell;
                    synchronized (ctx) {
                        bell = ctx.doorbells.isEmpty() ? null : ctx.last();
                    }
                    if (bell != null) {
                        bell.ring();
                    }
                    Thread.onSpinWait();
                }
            } catch (Throwable e) {
                failure.set(e);
            }
        });
        try {
            for (int round = 0; round < 200; round++) {
                TestDriver d = ready(m, 0x10000 + (round % 4) * 0x10000L);
                d.addChain(Buffer.writable(d.allocate(64), 64));
                ctx.last().ring();
                assertEquals(64, awaitUsed(d).length(), "round " + round);
                assertFalse(m.needsReset(), "round " + round + ": " + state(t).lastError());
                m.w(VirtioMmioTransport.STATUS, 0);
            }
        } finally {
            running.set(false);
            ringer.join();
        }
        assertEquals(null, failure.get());
        assertEquals(0, state(t).errors());
        assertEquals(0, ctx.openDoorbells());
        t.close();
        assertEquals(null, notifyThread());
    }
}
