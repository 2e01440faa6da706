package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.SharedMapping;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.internal.micro.BootBlock;
import org.nxia.vmm.internal.micro.MicroVmLayout;

/** A micro-VM's portal window filled to its last byte, and what the guest's portal table says of each mapping. */
class PortalWindowEdgesTest {

    private static final long MIB = 1L << 20;

    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final TestVms vms = new TestVms();

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    private static int flags(GuestMemory m, int slot) {
        return m.readInt(MicroVmLayout.BOOT_BLOCK + BootBlock.PORTALS + (long) BootBlock.PORTAL_ENTRY * slot + 24);
    }

    @Test
    void theGuestsTableSaysWhichPortalsAreMappedAndWritable() {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT, new DeviceConfig("mmio", Map.of()));
        DeviceContext c = vms.lastContext;
        GuestMemory m = hv.partition().memory();
        SharedMapping ro = c.mapPortal("ro", MemorySegment.ofArray(new byte[4096]), true, 0);
        SharedMapping rw = c.mapPortal("rw", MemorySegment.ofArray(new byte[4096]), false, 0xd000_0040L);
        assertTrue(ro.readOnly());
        assertFalse(rw.readOnly());
        assertEquals(4096, rw.size());
        assertEquals(BootBlock.PORTAL_MAPPED, flags(m, 0));
        assertEquals(BootBlock.PORTAL_MAPPED | BootBlock.PORTAL_WRITABLE, flags(m, 1));
        assertEquals(0xd000_0040L, m.readLong(MicroVmLayout.BOOT_BLOCK + BootBlock.PORTALS + BootBlock.PORTAL_ENTRY + 16), "its doorbell");
        ro.close();
        assertEquals(0, flags(m, 0), "closed: unmapped in the guest's table");
        assertEquals(BootBlock.PORTAL_MAPPED | BootBlock.PORTAL_WRITABLE, flags(m, 1));
        vm.destroy();
    }

    @Test
    void theWindowFillsToItsLastByteAndThenSaysHowMuchWasAsked() {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT, new DeviceConfig("mmio", Map.of()));
        DeviceContext c = vms.lastContext;
        MemorySegment sixteen = MemorySegment.ofArray(new byte[(int) (16 * MIB)]);
        List<SharedMapping> all = new ArrayList<>();
        for (int i = 0; i < BootBlock.MAX_PORTALS; i++) {
            all.add(c.mapPortal("p" + i, sixteen, false, 0));
        }
        assertEquals(MicroVmLayout.PORTAL_WINDOW + MicroVmLayout.PORTAL_WINDOW_SIZE - 16 * MIB, all.getLast().gpa(), "the last fits exactly");
        all.get(3).close();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> c.mapPortal("p3", MemorySegment.ofArray(new byte[(int) (16 * MIB + 1)]), false, 0));
        assertEquals("the portal window (256 MiB at 0xc0000000) has no free 18 MiB for 'p3'", e.getMessage());
        assertEquals(MicroVmLayout.PORTAL_WINDOW + 3 * 16 * MIB, c.mapPortal("p3", sixteen, false, 0).gpa(), "the hole it left");
        vm.destroy();
    }
}
