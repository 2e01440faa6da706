package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.spi.SharedMapping;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.internal.linux.LinuxLayout;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.internal.micro.BootBlock;
import org.nxia.vmm.internal.micro.MicroVmLayout;

/** The one Portal window allocator, as each kind lays it out. */
class PortalWindowTest {

    private static final long MIB = 1L << 20;

    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final TestVms vms = new TestVms();
    private final Arena arena = Arena.ofShared();
    @TempDir
    Path dir;

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
        arena.close();
    }

    private MemorySegment region(long bytes) {
        return arena.allocate(bytes, 4096);
    }

    @Test
    void microVmPortalsGoFirstFitIn2MiBStepsAndANameKeepsItsSlot() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT, new DeviceConfig("mmio", Map.of()));
        DeviceContext c = vms.lastContext;
        SharedMapping a = c.mapPortal("a", region(4096), false, 0);
        SharedMapping b = c.mapPortal("b", region(3 * MIB), true, 0);
        assertEquals(MicroVmLayout.PORTAL_WINDOW, a.gpa());
        assertEquals(MicroVmLayout.PORTAL_WINDOW + 2 * MIB, b.gpa(), "after a's 2 MiB span");
        assertThrows(IllegalArgumentException.class, () -> c.mapPortal("a", region(4096), false, 0), "already mapped");
        a.close();
        assertEquals(1, hv.partition().mappings().size(), "closing unmaps");
        SharedMapping a2 = c.mapPortal("c", region(MIB), false, 0);
        assertEquals(MicroVmLayout.PORTAL_WINDOW, a2.gpa(), "the freed hole is reused");
        assertEquals(java.util.List.of("c", "b"), vm.portalNames(),
                "in guest-address order, not slot order (a snapshot saves the regions so, and a restore checks it)");
        for (int i = 3; i < BootBlock.MAX_PORTALS; i++) {
            c.mapPortal("p" + i, region(4096), false, 0).close();
        }
        IllegalArgumentException full = assertThrows(IllegalArgumentException.class, () -> c.mapPortal("one-too-many", region(4096), false, 0));
        assertTrue(full.getMessage().contains("room for " + BootBlock.MAX_PORTALS + " portals"), full.getMessage());
        vm.destroy();
        b.close();   // after destroy: must not write the freed boot block
    }

    @Test
    void aFileBackedRegionIsMappedAsAnyOther() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT, new DeviceConfig("mmio", Map.of()));
        SharedMapping f = vms.lastContext.mapPortal("f", region(MIB), java.util.Optional.of(dir.resolve("f.img")), false, 0);
        assertEquals(MicroVmLayout.PORTAL_WINDOW, f.gpa());
        assertEquals(java.util.List.of("f"), vm.portalNames());
        f.close();
        assertEquals(0, hv.partition().mappings().size(), "closing unmaps");
        vm.destroy();
    }

    @Test
    void aMicroVmWriteToAReadOnlyPortalStopsItNamingThePortal() throws Exception {
        long at = MicroVmLayout.PORTAL_WINDOW + 16;
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.UntilStopped(), new Script.MmioWrite(at, 8, 1)));
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT, new DeviceConfig("mmio", Map.of()));
        vms.lastContext.mapPortal("ro", region(4096), true, 0);
        vm.start();
        VmResult r = vm.await(Duration.ofSeconds(10));
        assertEquals(VmResult.Reason.GUEST_ERROR, r.reason());
        assertTrue(r.detail().contains("read-only portal 'ro' at offset 0x10"), r.detail());
        vm.destroy();
    }

    @Test
    void linuxVmPortalsGoAbove4GiBIn128MiBSteps() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
        VmCore vm = vms.linux(hv, threads, dir, 1, VmCore.DESTROY_WAIT, new DeviceConfig("mmio", Map.of()));
        DeviceContext c = vms.lastContext;
        assertEquals(LinuxLayout.PORTAL_WINDOW, c.mapPortal("a", region(4096), false, 0).gpa());
        assertEquals(LinuxLayout.PORTAL_WINDOW + LinuxLayout.PORTAL_ALIGN, c.mapPortal("b", region(4096), false, 0).gpa());
        vm.destroy();
    }

    @Test
    void aLinuxVmNamesThePortalsMappedWhileItIsMadeOnTheCommandLine() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
        VmCore vm = vms.linux(hv, threads, dir, 1, VmCore.DESTROY_WAIT, new DeviceConfig("portal", Map.of()));
        String cmdline = new String(hv.partition().memory().read(LinuxLayout.CMDLINE, 4096), StandardCharsets.US_ASCII);
        cmdline = cmdline.substring(0, cmdline.indexOf('\0'));
        assertTrue(cmdline.endsWith(" nxia.portal=px@0x%x".formatted(LinuxLayout.PORTAL_WINDOW)), cmdline);
        vm.destroy();
    }
}
