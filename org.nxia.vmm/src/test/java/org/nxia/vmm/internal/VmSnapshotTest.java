package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.StatePart;
import org.nxia.vmm.spi.VcpuState;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.internal.memhv.ScriptedVcpu;
import org.nxia.vmm.internal.micro.MicroVmLayout;

/** Saving a paused VM and restoring it into a new one, on the in-memory hypervisor. */
class VmSnapshotTest {

    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final long MARK = 0x20_0000;

    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final TestVms vms = new TestVms();
    @TempDir
    Path dir;

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    private static DeviceConfig mmio(String state) {
        return new DeviceConfig("mmio", Map.of("state", state));
    }

    /** A micro-VM that ran, wrote a mark into RAM and a clock into its partition, and is paused. */
    private VmCore pausedVm(InMemoryHypervisor hv, DeviceConfig... devices) throws Exception {
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT, devices);
        vm.start();
        assertTrue(hv.partition().vcpus().getFirst().awaitEntered(WAIT.toMillis()));
        vm.memory().write(MARK, new byte[] {1, 2, 3, 4});
        hv.partition().clock = 77;
        vm.pause();
        return vm;
    }

    @Test
    void aPausedVmIsSavedWholeAndANewVmTakesItAllBeforeItRuns() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = pausedVm(hv, mmio("queue=7"));
        Registers saved = hv.partition().vcpus().getFirst().registers();
        VmSnapshot snapshot = vm.snapshot();
        assertEquals(VmState.PAUSED, vm.state(), "saving leaves it paused");
        assertEquals(List.of(new VmSnapshot.DeviceState("mmio", "queue=7".getBytes())), snapshot.devices());
        assertEquals(vm.spec().memoryBytes(), snapshot.ramBytes(), "the in-memory partition says all RAM is populated");
        vm.destroy();

        InMemoryHypervisor hv2 = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore restored = vms.micro(hv2, threads, VmCore.DESTROY_WAIT, mmio("other"));
        restored.memory().write(MARK + 4096, new byte[] {9});   // the new VM's own bytes must not survive
        List<String> atDeviceRestore = new java.util.ArrayList<>();
        vms.onDeviceRestore = () -> atDeviceRestore.add("clock " + hv2.partition().clock + ", vCPU restored "
                + hv2.partition().vcpus().getFirst().restoredRuns());
        restored.restoreFrom(snapshot);
        // devices last: one may interrupt at once, and the interrupt controllers' saved state would undo it
        assertEquals(List.of("clock 77, vCPU restored 1"), atDeviceRestore, "the partition and vCPUs were in before the devices");
        assertArrayEquals(new byte[] {1, 2, 3, 4}, restored.memory().read(MARK, 4));
        assertEquals(0, restored.memory().read(MARK + 4096, 1)[0]);
        assertEquals(List.of("queue=7"), vms.restoredStates, "the device got its saved state");
        assertEquals(77, hv2.partition().clock);
        ScriptedVcpu vcpu = hv2.partition().vcpus().getFirst();
        assertEquals(1, vcpu.restoredRuns(), "the vCPU got its saved state");
        assertEquals(saved, vcpu.registers());
        assertEquals(0, vcpu.runs(), "nothing ran before the state was in");
        restored.start();
        assertTrue(vcpu.awaitEntered(WAIT.toMillis()));
        restored.stop();
        assertEquals(VmResult.Reason.STOPPED, restored.await(WAIT).reason());
        restored.destroy();
    }

    @Test
    void onlyAPausedVmIsSaved() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT);
        vm.start();
        assertEquals("vm-micro is running; only a paused VM can be saved (vm:pause first), or one not yet started",
                assertThrows(IllegalStateException.class, vm::snapshot).getMessage());
        vm.destroy();
    }

    @Test
    void aDeviceThatCannotBeSavedRefusesTheSnapshotNamingIt() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = pausedVm(hv, mmio("a"), new DeviceConfig("i8042", Map.of()));
        IllegalStateException e = assertThrows(IllegalStateException.class, vm::snapshot);
        assertTrue(e.getMessage().startsWith("vm-micro cannot be saved: device 1 (i8042) cannot: device i8042 cannot be saved"),
                e.getMessage());
        assertEquals(VmState.PAUSED, vm.state());
        vm.resume();
        vm.destroy();
    }

    @Test
    void aRestoredVcpuPartOfTheWrongSizeIsRefusedAndTheNewVmIsGone() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmManagerImpl manager = new VmManagerImpl(hv);
        try {
            for (Map.Entry<String, DeviceFactory> f : vms.factories().entrySet()) {
                manager.addDeviceFactory(f.getValue(), Map.of(DeviceFactory.TYPE_PROPERTY, f.getKey()));
            }
            Path image = Files.write(dir.resolve("guest.elf"), ElfBuilder.minimal().build());
            VirtualMachine vm = manager.create(VmProfile.of(image).withDevices(List.of(mmio("x"))));
            vm.start();
            assertTrue(hv.partitions().getFirst().vcpus().getFirst().awaitEntered(WAIT.toMillis()));
            vm.pause();
            VmSnapshot good = vm.snapshot();
            VcpuState v = good.vcpus().getFirst();
            VcpuState tampered = new VcpuState(0, v.registers(), v.special(),
                    List.of(new StatePart(ScriptedVcpu.RUNS_PART, new byte[4])));
            VmSnapshot bad = new VmSnapshot(good.spec(), good.backend(), good.ram(), List.of(tampered), good.partition(), good.devices());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> manager.restore(bad));
            assertEquals("vCPU 0 state part 'runs' of 4 bytes: the in-memory vCPU has only 'runs' of 8", e.getMessage());
            assertEquals(List.of(vm), manager.list(), "the half-restored VM is destroyed");
            assertTrue(hv.partitions().get(1).closed());

            VmSnapshot badDevice = new VmSnapshot(good.spec(), good.backend(), good.ram(), good.vcpus(), good.partition(),
                    List.of(new VmSnapshot.DeviceState("mmio", "bad".getBytes())));
            assertThrows(IllegalArgumentException.class, () -> manager.restore(badDevice));
            VmSnapshot otherBackend = new VmSnapshot(good.spec(), "whp", good.ram(), good.vcpus(), good.partition(), good.devices());
            assertEquals("the snapshot was taken on the whp backend; this is in-memory",
                    assertThrows(IllegalArgumentException.class, () -> manager.restore(otherBackend)).getMessage());
            assertEquals(List.of(vm), manager.list());

            VirtualMachine restored = manager.restore(good);
            assertEquals(VmState.RUNNING, restored.state(), "restore starts it");
            assertTrue(hv.partitions().getLast().vcpus().getFirst().awaitEntered(WAIT.toMillis()));
            assertEquals(1, hv.partitions().getLast().vcpus().getFirst().restoredRuns());
        } finally {
            manager.deactivate();
        }
    }

    @Test
    void aSnapshotKeepsItsRamWhateverTheSavedVmDoesAfterwards() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = pausedVm(hv, mmio("a"));
        VmSnapshot snapshot = vm.snapshot();
        vm.memory().write(MARK, new byte[] {7, 7, 7, 7});
        MemorySegment chunk = snapshot.ram().stream().filter(c -> c.gpa() <= MARK && MARK < c.end()).findFirst().orElseThrow().bytes();
        assertEquals(1, chunk.get(ValueLayout.JAVA_BYTE, MARK - snapshot.ram().getFirst().gpa()));
        assertThrows(IllegalArgumentException.class, () -> chunk.set(ValueLayout.JAVA_BYTE, 0, (byte) 1), "read-only");
        assertTrue(chunk.asByteBuffer().isReadOnly());
        vm.destroy();
    }

    // ---- Portal regions: saved with what they held, put back on restore, checked first (the code is
    // the same for both kinds; PortalWindowTest covers where each kind maps them) ----

    private static final DeviceConfig PORTAL = new DeviceConfig("portal", Map.of());
    private static final long REGION_MARK = 0x1f_f000;

    private static InMemoryHypervisor hv() {
        return new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
    }

    @Test
    void aMicroVmsRegionIsSavedWithItsContentAndARestorePutsItBack() {
        VmCore saved = vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL);
        MemorySegment region = vms.lastRegion;
        region.set(ValueLayout.JAVA_LONG, 0, 0x5ea1ed_c0ffeeL);
        region.set(ValueLayout.JAVA_LONG, REGION_MARK, 42);
        VmSnapshot s = saved.snapshot();
        saved.destroy();
        assertEquals(1, s.portals().size());
        VmSnapshot.PortalContent p = (VmSnapshot.PortalContent) s.portals().getFirst();
        assertEquals("px", p.name());
        assertEquals(MicroVmLayout.PORTAL_WINDOW, p.gpa());
        assertEquals(2L << 20, p.bytes().byteSize());
        region.set(ValueLayout.JAVA_LONG, 0, 7);
        assertEquals(0x5ea1ed_c0ffeeL, p.bytes().get(ValueLayout.JAVA_LONG_UNALIGNED, 0), "a copy, not a view of the live region");

        VmCore restored = vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL);
        MemorySegment fresh = vms.lastRegion;
        assertEquals(0, fresh.get(ValueLayout.JAVA_LONG, 0));
        restored.restoreFrom(s);
        assertEquals(0x5ea1ed_c0ffeeL, fresh.get(ValueLayout.JAVA_LONG, 0));
        assertEquals(42, fresh.get(ValueLayout.JAVA_LONG, REGION_MARK));
        restored.destroy();
    }

    @Test
    void aRestoreIntoAVmWithoutTheRegionOrWithItElsewhereIsRefusedBeforeAnythingIsWritten() {
        VmCore saved = vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL);
        vms.lastRegion.set(ValueLayout.JAVA_LONG, 0, 1);
        VmSnapshot s = saved.snapshot();
        saved.destroy();

        // the saved VM's device list, but the region at another address than saved
        VmSnapshot.PortalContent p = (VmSnapshot.PortalContent) s.portals().getFirst();
        VmSnapshot moved = new VmSnapshot(s.spec(), s.backend(), s.ram(), s.vcpus(), s.partition(), s.devices(),
                List.of(new VmSnapshot.PortalContent("px", p.gpa() + (2L << 20), p.bytes())));
        String why = refused(vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL), moved);
        assertTrue(why.contains("'px' was 2097152 bytes at 0x%x".formatted(p.gpa() + (2L << 20))), why);
        assertEquals(0, vms.lastRegion.get(ValueLayout.JAVA_LONG, 0), "nothing written");

        VmSnapshot renamed = new VmSnapshot(s.spec(), s.backend(), s.ram(), s.vcpus(), s.partition(), s.devices(),
                List.of(new VmSnapshot.PortalContent("py", p.gpa(), p.bytes())));
        why = refused(vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL), renamed);
        assertTrue(why.contains("Portal region 'py' mapped"), why);
    }

    @Test
    void aSnapshotsRegionsMustLieOutsideRamOnceEachInOrder() {
        VmCore vm = vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL);
        VmSnapshot s = vm.snapshot();
        vm.destroy();
        MemorySegment page = MemorySegment.ofArray(new byte[4096]);
        long above = MicroVmLayout.PORTAL_WINDOW;
        for (List<VmSnapshot.SavedPortal> bad : List.<List<VmSnapshot.SavedPortal>>of(
                List.of(new VmSnapshot.PortalContent("in-ram", 0x10_0000, page)),
                List.of(new VmSnapshot.PortalContent("a", above, page), new VmSnapshot.PortalContent("a", above + 4096, page)),
                List.of(new VmSnapshot.PortalContent("b", above + 4096, page), new VmSnapshot.PortalContent("c", above, page)))) {
            assertThrows(IllegalArgumentException.class,
                    () -> new VmSnapshot(s.spec(), s.backend(), s.ram(), s.vcpus(), s.partition(), s.devices(), bad), bad.toString());
        }
        assertThrows(IllegalArgumentException.class, () -> new VmSnapshot.PortalContent("odd", above + 1, page));
    }

    private static final DeviceConfig PORTAL_FILE = new DeviceConfig("portal-file", Map.of());

    /**
     * A file-backed region is saved by reference (its file and its content's SHA-256, no copy), and
     * a restore goes on only from a region backed by the same file that still holds that content;
     * it writes nothing into the region.
     */
    @Test
    void aFileBackedRegionIsSavedByReferenceAndRestoredOnlyOverItsUnchangedFile() {
        MemorySegment region = vms.fileRegion;
        region.set(ValueLayout.JAVA_LONG, 8, 0xf11e_5a7eL);
        VmCore saved = vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL_FILE);
        VmSnapshot s = saved.snapshot();
        saved.destroy();
        VmSnapshot.PortalFile p = (VmSnapshot.PortalFile) s.portals().getFirst();
        assertEquals(new VmSnapshot.PortalFile("pf", MicroVmLayout.PORTAL_WINDOW, 1L << 20, vms.regionFile,
                VmSnapshot.PortalFile.digest(region)), p);
        assertEquals(0, s.portalBytes(), "no copy of the region's content");
        assertTrue(p.holds(region));

        VmCore same = vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL_FILE);
        same.restoreFrom(s);
        assertEquals(0xf11e_5a7eL, region.get(ValueLayout.JAVA_LONG, 8));
        same.destroy();

        region.set(ValueLayout.JAVA_BYTE, (1L << 20) - 1, (byte) 1);   // the file changed after the save
        String why = refused(vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL_FILE), s);
        assertTrue(why.contains("'pf' was saved by reference to its file /srv/nxia/regions/pf.img, which has changed since"), why);
        region.set(ValueLayout.JAVA_BYTE, (1L << 20) - 1, (byte) 0);

        vms.regionFile = Path.of("/srv/nxia/regions/other.img");
        why = refused(vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL_FILE), s);
        assertTrue(why.endsWith("it is backed by /srv/nxia/regions/other.img"), why);

        vms.regionFile = null;
        why = refused(vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL_FILE), s);
        assertTrue(why.endsWith("it is anonymous"), why);
    }

    /** Why {@code vm}, fresh, refuses {@code snapshot}: refused before it starts, then destroyed. */
    private static String refused(VmCore vm, VmSnapshot snapshot) {
        try {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> vm.restoreFrom(snapshot));
            assertEquals(VmState.CREATED, vm.state(), "refused before it started");
            return e.getMessage();
        } finally {
            vm.destroy();
        }
    }

    @Test
    void aSavedRegionsFileIsAbsoluteAndItsDigestASha256() {
        byte[] sha = new byte[32];
        assertThrows(IllegalArgumentException.class, () -> new VmSnapshot.PortalFile("r", 0, 4096, Path.of("relative.img"), sha));
        assertThrows(IllegalArgumentException.class, () -> new VmSnapshot.PortalFile("r", 0, 4096, Path.of("/r.img"), new byte[31]));
        assertThrows(IllegalArgumentException.class, () -> new VmSnapshot.PortalFile("r", 0, 4095, Path.of("/r.img"), sha));
        VmSnapshot.PortalFile f = new VmSnapshot.PortalFile("r", 0, 4096, Path.of("/r.img"), sha);
        sha[0] = 1;
        assertEquals(0, f.sha256()[0], "a copy is kept");
        f.sha256()[1] = 1;
        assertEquals(0, f.sha256()[1], "a copy is handed out");
        assertTrue(!f.holds(MemorySegment.ofArray(new byte[4096])), "a digest of zeros is not the zero page's");
        assertTrue(new VmSnapshot.PortalFile("r", 0, 4096, Path.of("/r.img"), sha256(new byte[4096])).holds(MemorySegment.ofArray(new byte[4096])));
        assertTrue(!new VmSnapshot.PortalFile("r", 0, 8192, Path.of("/r.img"), sha256(new byte[4096])).holds(MemorySegment.ofArray(new byte[4096])),
                "another size is other content");
    }

    private static byte[] sha256(byte[] bytes) {
        try {
            return java.security.MessageDigest.getInstance("SHA-256").digest(bytes);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    /** Nothing is written into a file-backed region on restore, so a VM that has it mapped does not stop one. */
    @Test
    void theManagerRestoresAFileBackedRegionAnotherVmHasMapped() throws Exception {
        VmManagerImpl manager = new VmManagerImpl(hv());
        try {
            for (Map.Entry<String, DeviceFactory> f : vms.factories().entrySet()) {
                manager.addDeviceFactory(f.getValue(), Map.of(DeviceFactory.TYPE_PROPERTY, f.getKey()));
            }
            VmProfile profile = VmProfile.of(Files.write(dir.resolve("g.elf"), ElfBuilder.minimal().build()))
                    .withDevices(List.of(PORTAL_FILE));
            VirtualMachine first = manager.create(profile);
            VirtualMachine restored = manager.restore(first.snapshot());
            assertEquals(2, manager.list().size(), "both run over the one file");
            manager.destroy(restored.id());
            manager.destroy(first.id());
        } finally {
            manager.deactivate();
        }
    }

    @Test
    void theManagerRefusesARestoreIntoARegionAnotherVmHasMappedAndRestoresOnceItIsGone() throws Exception {
        VmManagerImpl manager = new VmManagerImpl(hv());
        try {
            for (Map.Entry<String, DeviceFactory> f : vms.factories().entrySet()) {
                manager.addDeviceFactory(f.getValue(), Map.of(DeviceFactory.TYPE_PROPERTY, f.getKey()));
            }
            VmProfile profile = VmProfile.of(Files.write(dir.resolve("g.elf"), ElfBuilder.minimal().build())).withDevices(List.of(PORTAL));
            VirtualMachine first = manager.create(profile);
            vms.lastRegion.set(ValueLayout.JAVA_LONG, REGION_MARK, 11);
            VmSnapshot s = first.snapshot();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> manager.restore(s));
            assertTrue(e.getMessage().contains("'px' is mapped in " + first.id()), e.getMessage());
            assertEquals(List.of(first.id()), manager.list().stream().map(VirtualMachine::id).toList(), "the refused VM is gone");
            // a clone (RAM from a file, the rest from the snapshot) is refused the same way
            VmSnapshot stateOnly = s.withoutRam();
            org.nxia.vmm.spi.RamFile ram = new org.nxia.vmm.spi.RamFile(Files.write(dir.resolve("ram"), new byte[0]),
                    s.spec().memoryBytes(), List.of());
            IllegalArgumentException clone = assertThrows(IllegalArgumentException.class, () -> manager.clone(stateOnly, ram));
            assertTrue(clone.getMessage().contains("'px' is mapped in " + first.id()), clone.getMessage());
            assertEquals(List.of(first.id()), manager.list().stream().map(VirtualMachine::id).toList(), "the refused clone is gone");
            manager.destroy(first.id());
            VirtualMachine restored = manager.restore(s);
            assertEquals(11, vms.lastRegion.get(ValueLayout.JAVA_LONG, REGION_MARK));
            manager.destroy(restored.id());
        } finally {
            manager.deactivate();
        }
    }
}
