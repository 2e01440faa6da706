package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.internal.micro.MicroVmLayout;

/**
 * A VM's mapped Portal regions in its snapshot: saved with what they held, put back on restore, checked first
 * (the code is the same for both kinds; PortalWindowTest covers where each kind maps them).
 */
class PortalSnapshotTest {

    private static final DeviceConfig PORTAL = new DeviceConfig("portal", Map.of());
    private static final long MARK = 0x1f_f000;

    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final TestVms vms = new TestVms();
    @TempDir
    Path dir;

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    private static InMemoryHypervisor hv() {
        return new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
    }

    @Test
    void aMicroVmsRegionIsSavedWithItsContentAndARestorePutsItBack() {
        VmCore saved = vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL);
        MemorySegment region = vms.lastRegion;
        region.set(ValueLayout.JAVA_LONG, 0, 0x5ea1ed_c0ffeeL);
        region.set(ValueLayout.JAVA_LONG, MARK, 42);
        VmSnapshot s = saved.snapshot();
        saved.destroy();
        assertEquals(1, s.portals().size());
        VmSnapshot.PortalContent p = s.portals().getFirst();
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
        assertEquals(42, fresh.get(ValueLayout.JAVA_LONG, MARK));
        restored.destroy();
    }

    @Test
    void aRestoreIntoAVmWithoutTheRegionOrWithItElsewhereIsRefusedBeforeAnythingIsWritten() {
        VmCore saved = vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL);
        vms.lastRegion.set(ValueLayout.JAVA_LONG, 0, 1);
        VmSnapshot s = saved.snapshot();
        saved.destroy();

        // the saved VM's device list, but the region at another address than saved
        VmSnapshot.PortalContent p = s.portals().getFirst();
        VmSnapshot moved = new VmSnapshot(s.spec(), s.backend(), s.ram(), s.vcpus(), s.partition(), s.devices(),
                List.of(new VmSnapshot.PortalContent("px", p.gpa() + (2L << 20), p.bytes())));
        VmCore other = vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> other.restoreFrom(moved));
        assertTrue(e.getMessage().contains("'px' was 2097152 bytes at 0x%x".formatted(p.gpa() + (2L << 20))), e.getMessage());
        assertEquals(0, vms.lastRegion.get(ValueLayout.JAVA_LONG, 0), "nothing written");
        other.destroy();

        VmSnapshot renamed = new VmSnapshot(s.spec(), s.backend(), s.ram(), s.vcpus(), s.partition(), s.devices(),
                List.of(new VmSnapshot.PortalContent("py", p.gpa(), p.bytes())));
        VmCore without = vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL);
        e = assertThrows(IllegalArgumentException.class, () -> without.restoreFrom(renamed));
        assertTrue(e.getMessage().contains("Portal region 'py' mapped"), e.getMessage());
        without.destroy();
    }

    @Test
    void aSnapshotsRegionsMustLieOutsideRamOnceEachInOrder() {
        VmCore vm = vms.micro(hv(), threads, VmCore.DESTROY_WAIT, PORTAL);
        VmSnapshot s = vm.snapshot();
        vm.destroy();
        MemorySegment page = MemorySegment.ofArray(new byte[4096]);
        long above = MicroVmLayout.PORTAL_WINDOW;
        for (List<VmSnapshot.PortalContent> bad : List.of(
                List.of(new VmSnapshot.PortalContent("in-ram", 0x10_0000, page)),
                List.of(new VmSnapshot.PortalContent("a", above, page), new VmSnapshot.PortalContent("a", above + 4096, page)),
                List.of(new VmSnapshot.PortalContent("b", above + 4096, page), new VmSnapshot.PortalContent("c", above, page)))) {
            assertThrows(IllegalArgumentException.class,
                    () -> new VmSnapshot(s.spec(), s.backend(), s.ram(), s.vcpus(), s.partition(), s.devices(), bad), bad.toString());
        }
        assertThrows(IllegalArgumentException.class, () -> new VmSnapshot.PortalContent("odd", above + 1, page));
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
            vms.lastRegion.set(ValueLayout.JAVA_LONG, MARK, 11);
            VmSnapshot s = first.snapshot();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> manager.restore(s));
            assertTrue(e.getMessage().contains("'px' is mapped in " + first.id()), e.getMessage());
            assertEquals(List.of(first.id()), manager.list().stream().map(VirtualMachine::id).toList(), "the refused VM is gone");
            manager.destroy(first.id());
            VirtualMachine restored = manager.restore(s);
            assertEquals(11, vms.lastRegion.get(ValueLayout.JAVA_LONG, MARK));
            manager.destroy(restored.id());
        } finally {
            manager.deactivate();
        }
    }
}
