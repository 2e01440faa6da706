package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.internal.linux.TestKernel;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;

/**
 * A Linux VM whose profile asks for Hyper-V: the core asks the partition for it after the interrupt
 * controller and before the vCPUs, refuses to save it, and a backend without it refuses the VM. On the
 * in-memory hypervisor: what the guest then sees is LinuxBootTest's, on KVM in the rig.
 */
class HyperVPartitionTest {

    @TempDir
    Path dir;
    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final TestVms vms = new TestVms();

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    private LinuxProfile profile(boolean hyperv) throws Exception {
        Path kernel = Files.write(dir.resolve("bzImage"), TestKernel.image());
        return LinuxProfile.of(kernel, null).withVcpus(2).withMemory(LinuxProfile.MIN_MEMORY).withHyperv(hyperv);
    }

    @Test
    void aHyperVProfileMakesAHyperVPartitionBeforeItsVcpusAndCannotBeSaved() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = new VmCore("vm-hv", new LinuxVm(profile(true), hv.info()), hv, threads, vms.factories());
        try {
            assertEquals(0, hv.partition().hyperVAfterVcpus, "asked before the first vCPU");
            assertEquals(2, hv.partition().vcpus().size());
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, vm::snapshot);
            assertTrue(e.getMessage().contains("Hyper-V"), e.getMessage());
        } finally {
            vm.destroy();
        }
        VmCore plain = new VmCore("vm-plain", new LinuxVm(profile(false), hv.info()), hv, threads, vms.factories());
        plain.destroy();
        assertEquals(-1, hv.partitions().getLast().hyperVAfterVcpus, "not asked without it");
    }

    @Test
    void aBackendWithoutHyperVRefusesTheVmAndClosesItsPartition() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        hv.hyperV = false;
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                () -> new VmCore("vm-x", new LinuxVm(profile(true), hv.info()), hv, threads, vms.factories()));
        assertTrue(e.getMessage().contains("Hyper-V"), e.getMessage());
        assertTrue(hv.partitions().getLast().closed(), "the partition made for it is closed again");
        assertEquals(List.of(), hv.partitions().getLast().vcpus());
    }
}
