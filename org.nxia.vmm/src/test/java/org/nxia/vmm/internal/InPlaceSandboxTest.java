package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.Sandbox;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.internal.micro.MicroVmPorts;

/**
 * A sandbox reset in place between runs, on the in-memory hypervisor: the
 * pages the "guest" (its stand-in dirty log) and the VMM wrote are put back,
 * other pages are not touched, and each run starts from the template again.
 */
class InPlaceSandboxTest {

    private static final long GUEST_MARK = 0x30_0000;
    private static final long HOST_MARK = 0x31_0000;
    private static final long UNLOGGED = 0x32_0000;

    @TempDir
    Path dir;
    private final InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(),
            new Script.PortWrite(MicroVmPorts.DEBUG_PUTC, 1, 'h'), new Script.PortWrite(MicroVmPorts.EXIT, 4, 7)));
    private final VmManagerImpl manager = new VmManagerImpl(hv);

    @AfterEach
    void deactivate() {
        manager.deactivate();
    }

    private VmProfile profile() throws Exception {
        return VmProfile.of(Files.write(dir.resolve("g.elf"), ElfBuilder.minimal().build()));
    }

    /** A snapshot of a micro-VM created and not started: its entry point. */
    private VmSnapshot template(VmProfile profile) {
        VirtualMachine vm = manager.create(profile);
        try {
            return vm.snapshot();
        } finally {
            manager.destroy(vm.id());
        }
    }

    @Test
    void eachRunStartsFromTheTemplateWithOnlyTheWrittenPagesRewritten() throws Exception {
        VmSnapshot template = template(profile());
        try (Sandbox sandbox = manager.sandbox(template)) {
            StringBuilder console = new StringBuilder();
            VmResult first = sandbox.run(console);
            assertEquals(VmResult.Reason.EXITED, first.reason());
            assertEquals(7, first.exitStatus());
            assertEquals(0, sandbox.pagesRewritten(), "no reset before the first run");

            InMemoryHypervisor.InMemoryPartition partition = hv.partitions().getLast();
            GuestMemory vmm = ((VmCore) manager.find(sandbox.vmId()).orElseThrow()).memory();
            partition.guestWrite(GUEST_MARK, new byte[] {5});
            vmm.write(HOST_MARK, new byte[] {6});
            partition.memory().write(UNLOGGED, new byte[] {9});   // behind both logs' backs

            for (int run = 2; run <= 3; run++) {
                VmResult r = sandbox.run(console);
                assertEquals(VmResult.Reason.EXITED, r.reason(), r.detail());
                assertEquals(7, r.exitStatus());
            }
            assertEquals("hhh", console.toString(), "every run printed from the start");
            assertEquals("h", manager.find(sandbox.vmId()).orElseThrow().console(), "the VM's console log holds the last run's only");
            assertEquals(0, partition.memory().readByte(GUEST_MARK), "the guest's write was undone");
            assertEquals(0, partition.memory().readByte(HOST_MARK), "the VMM's write was undone");
            assertEquals(9, partition.memory().readByte(UNLOGGED), "a page neither log saw was not rewritten");
            long pages = sandbox.pagesRewritten();
            assertTrue(pages >= 0 && pages < 8, "the last reset rewrote only the few pages the VMM read after a run: " + pages);
            assertEquals(List.of(sandbox.vmId()), manager.list().stream().map(VirtualMachine::id).toList());
        }
        assertTrue(manager.list().isEmpty(), "closing destroys the VM");
    }

    /** The sandbox's VM is the template's, RAM included, not a fresh VM of the same profile. */
    @Test
    void theSandboxStartsFromTheTemplatesRam() throws Exception {
        VirtualMachine vm = manager.create(profile());
        VmSnapshot template;
        try {
            ((VmCore) vm).memory().write(GUEST_MARK, new byte[] {42});
            template = vm.snapshot();
        } finally {
            manager.destroy(vm.id());
        }
        try (Sandbox sandbox = manager.sandbox(template)) {
            GuestMemory ram = ((VmCore) manager.find(sandbox.vmId()).orElseThrow()).memory();
            assertEquals(42, ram.readByte(GUEST_MARK));
        }
    }

    @Test
    void theSecondResetCountsTheWrittenPages() throws Exception {
        try (Sandbox sandbox = manager.sandbox(template(profile()))) {
            sandbox.run(null);
            sandbox.run(null);
            long baseline = sandbox.pagesRewritten();
            InMemoryHypervisor.InMemoryPartition partition = hv.partitions().getLast();
            for (int page = 0; page < 5; page++) {
                partition.guestWrite(GUEST_MARK + page * 4096L, new byte[] {1});
            }
            sandbox.run(null);
            assertEquals(baseline + 5, sandbox.pagesRewritten());
        }
    }

    @Test
    void aTemplateWithDevicesIsRefusedAndLeavesNoVm() throws Exception {
        VmSnapshot plain = template(profile());
        VmSnapshot withDevice = new VmSnapshot(plain.spec(), plain.backend(), plain.ram(), plain.vcpus(), plain.partition(),
                List.of(new VmSnapshot.DeviceState("uart", new byte[0])));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> manager.sandbox(withDevice));
        assertTrue(e.getMessage().contains("a sandbox takes a micro-VM without devices"), e.getMessage());
        assertTrue(manager.list().isEmpty());
    }

    @Test
    void aClosedSandboxRunsNoMore() throws Exception {
        Sandbox sandbox = manager.sandbox(template(profile()));
        sandbox.close();
        sandbox.close();
        assertEquals("sandbox vm-2 is closed", assertThrows(IllegalStateException.class, () -> sandbox.run(null)).getMessage());
    }

}
