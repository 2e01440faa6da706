package org.nxia.device.virtio.internal.pmem;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.device.virtio.internal.DirtyPages;
import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.device.virtio.internal.queue.TestDriver;
import org.nxia.device.virtio.internal.queue.TestDriver.Buffer;
import org.nxia.portal.api.DoorbellLink;
import org.nxia.portal.api.Rights;
import org.nxia.portal.internal.PortalsImpl;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.SharedMapping;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;

/** virtio-pmem driven register by register on heap memory, with the real Portal registry (no KVM). */
class VirtioPmemTest {

    static final long F_VERSION_1 = 1L << 32;
    static final long MIB2 = 2L << 20;
    static final long PMEM_GPA = 0x1_0000_0000L;
    // virtio-mmio registers (virtio 1.2, 4.2.2)
    static final int DEVICE_ID = 0x008, DEVICE_FEATURES = 0x010, DEVICE_FEATURES_SEL = 0x014, DRIVER_FEATURES = 0x020,
            DRIVER_FEATURES_SEL = 0x024, QUEUE_SEL = 0x030, QUEUE_NUM = 0x038, QUEUE_READY = 0x044, QUEUE_NOTIFY = 0x050,
            STATUS = 0x070, INTERRUPT_STATUS = 0x060, INTERRUPT_ACK = 0x064, QUEUE_DESC_LOW = 0x080, QUEUE_DRIVER_LOW = 0x090, QUEUE_DEVICE_LOW = 0x0a0, CONFIG = 0x100;

    /** One VM as a device sees it: heap RAM, its windows, its mapped portals, one interrupt line if it has interrupts. */
    static class Vm implements DeviceContext {
        final String id;
        final GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[1 << 20]));
        final List<MmioDevice> windows = new ArrayList<>();
        final boolean interrupts;
        int pulses;

        Vm(String id, boolean interrupts) {
            this.id = id;
            this.interrupts = interrupts;
        }

        @Override
        public String vmId() {
            return id;
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
        public SharedMapping mapPortal(String name, MemorySegment region, boolean readOnly, long doorbellGpa) {
            return new SharedMapping() {
                @Override
                public long gpa() {
                    return PMEM_GPA;
                }

                @Override
                public long size() {
                    return region.byteSize();
                }

                @Override
                public boolean readOnly() {
                    return readOnly;
                }

                @Override
                public void close() {
                }
            };
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
                    throw new AssertionError("virtio-mmio pulses");
                }

                @Override
                public void pulse() {
                    pulses++;
                }
            });
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
        }

        int r(int reg) {
            return (int) windows.getLast().read(reg, 4);
        }

        void w(int reg, long v) {
            windows.getLast().write(reg, 4, v & 0xffff_ffffL);
        }
    }

    private final PortalsImpl portals = new PortalsImpl();
    private final VirtioPmemFactory factory = new VirtioPmemFactory(portals);
    private final Vm vm = new Vm("vm-linux", true);

    @AfterEach
    void closeRegions() {
        for (var r : portals.list()) {
            portals.mappings().stream().filter(m -> m.region().equals(r.name()) && m.mapped())
                    .forEach(m -> portals.unmap(m.vmId(), m.region()));
            portals.delete(r.name());
        }
    }

    /** The capability (portal device) and the pmem device, in profile order. */
    private Device attach(Vm into, String region, String rights, String pmemSpec) {
        portals.create(new DeviceConfig("portal", Map.of("name", region, "rights", rights)), into);
        return factory.create(DeviceConfig.parse(pmemSpec), into);
    }

    private TestDriver start(Vm v) {
        v.w(STATUS, 0);
        v.w(STATUS, VirtioMmioTransport.S_ACKNOWLEDGE | VirtioMmioTransport.S_DRIVER);
        v.w(DRIVER_FEATURES_SEL, 1);
        v.w(DRIVER_FEATURES, F_VERSION_1 >>> 32);
        v.w(STATUS, VirtioMmioTransport.S_ACKNOWLEDGE | VirtioMmioTransport.S_DRIVER | VirtioMmioTransport.S_FEATURES_OK);
        assertTrue((v.r(STATUS) & VirtioMmioTransport.S_FEATURES_OK) != 0);
        TestDriver d = TestDriver.create(v.memory, 16, 0x10000);
        v.w(QUEUE_SEL, 0);
        v.w(QUEUE_NUM, 16);
        v.w(QUEUE_DESC_LOW, d.descriptorTable());
        v.w(QUEUE_DRIVER_LOW, d.availRing());
        v.w(QUEUE_DEVICE_LOW, d.usedRing());
        v.w(QUEUE_READY, 1);
        v.w(STATUS, v.r(STATUS) | VirtioMmioTransport.S_DRIVER_OK);
        return d;
    }

    /** Posts {@code buffers}, notifies, and returns the used length. */
    private long post(Vm v, TestDriver d, Buffer... buffers) {
        d.addChain(buffers);
        v.w(QUEUE_NOTIFY, 0);
        TestDriver.Used used = d.pollUsed();
        assertNotNull(used, "the request was returned");
        return used.length();
    }

    private static boolean needsReset(Vm v) {
        return (v.r(STATUS) & VirtioMmioTransport.S_NEEDS_RESET) != 0;
    }

    @Test
    void configSpaceHoldsTheRegionsGuestPhysicalStartAndSize() {
        portals.create("data", 4 * MIB2, "test", Rights.RW, null);
        attach(vm, "data", "rw", "virtio-pmem:region=data");
        assertEquals(27, vm.r(DEVICE_ID));
        vm.w(DEVICE_FEATURES_SEL, 0);
        assertEquals(0, vm.r(DEVICE_FEATURES) & 1, "no VIRTIO_PMEM_F_SHMEM_REGION: start and size say where");
        MmioDevice dev = vm.windows.getLast();
        assertEquals(PMEM_GPA, dev.read(CONFIG, 8), "start (le64)");
        assertEquals(4 * MIB2, dev.read(CONFIG + 8, 8), "size (le64)");
        assertEquals(PMEM_GPA & 0xffff_ffffL, dev.read(CONFIG, 4));
        assertEquals(PMEM_GPA >>> 32, dev.read(CONFIG + 4, 4));
        assertEquals((4 * MIB2) >>> 16 & 0xff, dev.read(CONFIG + 10, 1));
        assertEquals(0, dev.read(CONFIG + 16, 4), "nothing past the 16 bytes");
    }

    @Test
    void flushSyncsAFileBackedRegionAndAnswersZero(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("pmem.img");
        DirtyPages.assumeWriteback(file);
        portals.create("disk", MIB2, "test", Rights.RW, file);
        Device device = attach(vm, "disk", "rw", "virtio-pmem:region=disk");
        TestDriver d = start(vm);
        MemorySegment host = portals.find("disk").orElseThrow().segment();
        host.set(ValueLayout.JAVA_LONG, 4096, 0x1122_3344_5566_7788L);  // as a guest store through the mapping would
        assertTrue(DirtyPages.dirtyBytes(host) >= 4096, "the store left its page dirty, not yet on disk");
        long req = d.allocate(4);
        vm.memory.writeInt(req, VirtioPmem.REQ_TYPE_FLUSH);
        long resp = d.allocate(4, (byte) 0xee);
        assertEquals(4, post(vm, d, Buffer.readable(req, 4), Buffer.writable(resp, 4)));
        assertEquals(0, vm.memory.readInt(resp), "ret 0: flushed");
        assertEquals(1, ((VirtioPmem.State) ((VirtioMmioTransport.State) device.state()).backend()).flushes());
        // Reading the file back would see the page cache whether or not msync ran; a clean mapping says it reached the disk.
        assertEquals(0, DirtyPages.dirtyBytes(host), "the flush wrote the region back (msync)");
        byte[] onDisk = Files.readAllBytes(file);
        assertEquals((byte) 0x88, onDisk[4096], "the file holds the region's bytes");
        assertTrue(vm.pulses > 0, "the driver is told the flush is done");
    }

    @Test
    void malformedRequestsAreAnsweredWithAnErrorOrDroppedButNeverBreakTheDevice() {
        portals.create("data", MIB2, "test", Rights.RW, null);
        Device device = attach(vm, "data", "rw", "virtio-pmem:region=data");
        TestDriver d = start(vm);
        long req = d.allocate(4);
        long resp = d.allocate(4, (byte) 0xee);
        vm.memory.writeInt(req, 7);
        assertEquals(4, post(vm, d, Buffer.readable(req, 4), Buffer.writable(resp, 4)));
        assertEquals(1, vm.memory.readInt(resp), "an unknown request type is an error");
        vm.memory.writeInt(resp, 0xeeee);
        assertEquals(4, post(vm, d, Buffer.readable(req, 2), Buffer.writable(resp, 4)));
        assertEquals(1, vm.memory.readInt(resp), "a request shorter than its type is an error");
        vm.memory.writeInt(resp, 0xeeee);
        assertEquals(4, post(vm, d, Buffer.writable(resp, 4)));
        assertEquals(1, vm.memory.readInt(resp), "no request at all is an error");
        vm.memory.writeInt(req, VirtioPmem.REQ_TYPE_FLUSH);
        assertEquals(0, post(vm, d, Buffer.readable(req, 4)), "no response buffer: returned unanswered");
        assertEquals(0, post(vm, d, Buffer.readable(req, 4), Buffer.writable(resp, 3)), "a 3-byte response buffer: unanswered");
        assertFalse(needsReset(vm), "a bad request fails that request, not the device");
        vm.memory.writeInt(resp, 0xeeee);
        assertEquals(4, post(vm, d, Buffer.readable(req, 4), Buffer.writable(resp, 4)));
        assertEquals(0, vm.memory.readInt(resp), "a good flush after the bad ones");
        VirtioPmem.State s = (VirtioPmem.State) ((VirtioMmioTransport.State) device.state()).backend();
        assertEquals(5, s.errors());
        assertEquals(1, s.flushes());
        d.addChain(new Buffer(0x7fff_0000_0000L, 4, false), Buffer.writable(resp, 4));
        vm.w(QUEUE_NOTIFY, 0);
        assertTrue(needsReset(vm), "a descriptor outside RAM is the queue's error: DEVICE_NEEDS_RESET");
    }

    @Test
    void aFlushOfADeletedRegionIsAnError() {
        portals.create("gone", MIB2, "test", Rights.RW, null);
        attach(vm, "gone", "rw", "virtio-pmem:region=gone");
        TestDriver d = start(vm);
        portals.unmap(vm.id, "gone");
        portals.delete("gone");
        long req = d.allocate(4);
        long resp = d.allocate(4, (byte) 0xee);
        vm.memory.writeInt(req, VirtioPmem.REQ_TYPE_FLUSH);
        assertEquals(4, post(vm, d, Buffer.readable(req, 4), Buffer.writable(resp, 4)));
        assertEquals(1, vm.memory.readInt(resp));
    }

    @Test
    void aVmWithoutTheCapabilityOrWithTheWrongRightsIsRefused() {
        portals.create("data", MIB2, "test", Rights.RW, null);
        var e = assertThrows(IllegalArgumentException.class, () -> factory.create(DeviceConfig.parse("virtio-pmem:region=data"), vm));
        assertTrue(e.getMessage().contains("no capability for portal data"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> factory.create(DeviceConfig.parse("virtio-pmem:region=nope"), vm));
        assertTrue(e.getMessage().contains("no portal nope"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> factory.create(DeviceConfig.parse("virtio-pmem"), vm));
        assertTrue(e.getMessage().contains("needs region="), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> factory.create(DeviceConfig.parse("virtio-pmem:region=data,size=1"), vm));
        assertTrue(e.getMessage().contains("unknown parameter 'size'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> attach(vm, "data", "rw", "virtio-pmem:region=data,ro=true"));
        assertTrue(e.getMessage().contains("rights=ro"), e.getMessage());
        portals.create("small", 64 * 1024, "test", Rights.RW, null);
        Vm other = new Vm("vm-other", true);
        e = assertThrows(IllegalArgumentException.class, () -> attach(other, "small", "rw", "virtio-pmem:region=small"));
        assertTrue(e.getMessage().contains("multiple of 2M"), e.getMessage());
    }

    @Test
    void daxWritesLinuxsInfoBlockAt4KibAndNothingElse() {
        var region = portals.create("px", 4 * MIB2, "test", Rights.RW, null);
        MemorySegment s = region.segment();
        s.fill((byte) 0x5a);
        attach(vm, "px", "rw", "virtio-pmem:region=px,dax=true");
        byte[] expected = DeviceDaxInfo.block("px", 4 * MIB2);
        assertArrayEquals(expected, s.asSlice(4096, 4096).toArray(ValueLayout.JAVA_BYTE), "the info block at 4 KiB");
        assertEquals(0x5a5a_5a5a_5a5a_5a5aL, s.get(ValueLayout.JAVA_LONG, 4088), "the first 4 KiB untouched");
        assertEquals((byte) 0x5a, s.get(ValueLayout.JAVA_BYTE, 8192), "the rest untouched");

        portals.create("plain", 4 * MIB2, "test", Rights.RW, null).segment().fill((byte) 0x5a);
        Vm other = new Vm("vm-other", true);
        attach(other, "plain", "rw", "virtio-pmem:region=plain");
        assertEquals((byte) 0x5a, portals.find("plain").orElseThrow().segment().get(ValueLayout.JAVA_BYTE, 4096), "no block without dax");

        portals.create("tiny", MIB2, "test", Rights.RW, null);
        Vm third = new Vm("vm-third", true);
        var e = assertThrows(IllegalArgumentException.class, () -> attach(third, "tiny", "rw", "virtio-pmem:region=tiny,dax=true"));
        assertTrue(e.getMessage().contains("at least 4 MiB"), e.getMessage());
    }

    @Test
    void theHostRingsTheRegionAndEveryInterruptShowsTheDriverAConfigurationChange() {
        portals.create("bell", MIB2, "test", Rights.RW, null);
        attach(vm, "bell", "rw", "virtio-pmem:region=bell");
        start(vm);
        int before = vm.pulses;
        portals.ring(vm.id, "bell");
        portals.ring(vm.id, "bell");
        assertEquals(before + 2, vm.pulses, "each host ring raises the pmem device's line");
        assertEquals(2, vm.r(INTERRUPT_STATUS) & 2, "the cause the driver reads: a configuration change (its doorbell count)");
        vm.w(INTERRUPT_ACK, 3);
        assertEquals(2, vm.r(INTERRUPT_STATUS) & 2, "still there after the ACK: the next ring needs it too");
        Vm other = new Vm("vm-nobell", false);
        portals.create(new DeviceConfig("portal", Map.of("name", "bell")), other);
        var e = assertThrows(IllegalArgumentException.class, () -> portals.ring(other.id, "bell"));
        assertTrue(e.getMessage().contains("has no interrupt for portal bell"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> portals.ring("vm-none", "bell"));
    }

    @Test
    void aReadOnlyGrantGivesAReadOnlyDevice() {
        portals.create("ro", MIB2, "test", Rights.RO, null);
        Device device = attach(vm, "ro", "ro", "virtio-pmem:region=ro");
        assertTrue(((VirtioPmem.State) ((VirtioMmioTransport.State) device.state()).backend()).readOnly());
    }

    @Test
    void aRestoredVmFindsTheRangeWhereItWasAndFlushesOn() {
        portals.create("data", MIB2, "test", Rights.RW, null);
        Device saved = attach(vm, "data", "rw", "virtio-pmem:region=data");
        TestDriver d = start(vm);
        long req = d.allocate(4);
        vm.memory.writeInt(req, VirtioPmem.REQ_TYPE_FLUSH);
        long resp = d.allocate(4, (byte) 0xee);
        assertEquals(4, post(vm, d, Buffer.readable(req, 4), Buffer.writable(resp, 4)));
        byte[] bytes = saved.saveState();

        Vm restored = new Vm("vm-restored", true);
        restored.memory.write(0, vm.memory.read(0, (int) vm.memory.size()));   // the snapshot's RAM
        Device device = attach(restored, "data", "rw", "virtio-pmem:region=data");
        device.restoreState(bytes);
        for (int reg : new int[] {DEVICE_ID, STATUS, QUEUE_READY, CONFIG, CONFIG + 4, CONFIG + 8, CONFIG + 12}) {
            assertEquals(vm.r(reg), restored.r(reg), "register 0x" + Integer.toHexString(reg));
        }
        restored.memory.writeInt(resp, 0xeeee);
        assertEquals(4, post(restored, d.onMemory(restored.memory), Buffer.readable(req, 4), Buffer.writable(resp, 4)));
        assertEquals(0, restored.memory.readInt(resp), "flushed by the restored device");
        assertEquals(2, restored.memory.readShort(d.usedRing() + 2), "served from the restored index");

        Vm elsewhere = new Vm("vm-elsewhere", true) {
            @Override
            public SharedMapping mapPortal(String name, MemorySegment region, boolean readOnly, long doorbellGpa) {
                SharedMapping at = super.mapPortal(name, region, readOnly, doorbellGpa);
                return new SharedMapping() {
                    @Override
                    public long gpa() {
                        return at.gpa() + MIB2;
                    }

                    @Override
                    public long size() {
                        return at.size();
                    }

                    @Override
                    public boolean readOnly() {
                        return at.readOnly();
                    }

                    @Override
                    public void close() {
                    }
                };
            }
        };
        Device moved = attach(elsewhere, "data", "rw", "virtio-pmem:region=data");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> moved.restoreState(bytes));
        assertTrue(e.getMessage().contains("the guest knows the range at 0x100000000, 0x200000 bytes; it is now at 0x100200000"),
                e.getMessage());
        assertEquals(0, elsewhere.r(STATUS), "left as created");
    }

    @Test
    void anotherVmsDoorbellRaisesThePmemLineThroughTheVmmWithoutAnIrqfd() {
        portals.create("shared", MIB2, "test", Rights.RW, null);
        Device pmem = attach(vm, "shared", "rw", "virtio-pmem:region=shared");
        Vm micro = new Vm("vm-micro", false);
        portals.create(new DeviceConfig("portal", Map.of("name", "shared")), micro);
        MmioDevice microDoorbell = micro.windows.getLast();
        var e = assertThrows(IllegalArgumentException.class, () -> portals.connect(vm.id, micro.id, "shared"));
        assertTrue(e.getMessage().contains("has no interrupt for portal shared"), e.getMessage());
        int before = vm.pulses;
        DoorbellLink link = portals.connect(micro.id, vm.id, "shared");
        assertFalse(link.inHypervisor(), "this context has no hypervisor doorbell: the VMM forwards");
        assertEquals(5, link.gsi());
        microDoorbell.write(0, 4, 1);
        microDoorbell.write(0, 4, 1);
        assertEquals(before + 2, vm.pulses, "each ring raises the pmem device's line");
        assertThrows(IllegalArgumentException.class, () -> portals.connect(micro.id, vm.id, "shared"));
        pmem.close();   // the Linux VM goes away: its line is withdrawn and the link closed
        assertFalse(link.connected());
        assertTrue(portals.links().isEmpty());
        microDoorbell.write(0, 4, 1);
        assertEquals(before + 2, vm.pulses);
    }
}
