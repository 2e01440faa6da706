package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.internal.linux.LinuxLayout;
import org.nxia.vmm.spi.SynicHost;
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
            // it got a VMBus server, which the DSDT names and the partition's SynIC exits reach
            assertEquals(List.of("uart", "i8042", "vmbus"), vm.devices().stream().map(d -> d.type()).toList());
            assertTrue(acpiTables(hv).contains("VMBS") && acpiTables(hv).contains("VMBus"), "the DSDT names the VMBus");
            assertEquals(0x5c5c, hv.partition().synicHost.hypercall(0, SynicHost.HVCALL_POST_MESSAGE, 0, 0));
            hv.partition().synicHost.synicChanged(1, 1, 0, 0x10001);
            assertEquals(1, vms.synicChanges.get());
            assertEquals(2, vms.lastSynic.orElseThrow().vcpus());
            IllegalStateException twice = assertThrows(IllegalStateException.class, () -> vms.lastContext.claimSynic(SynicHost.NONE));
            assertEquals("another device serves this VM's SynIC already", twice.getMessage());
        } finally {
            vm.destroy();
        }
        VmCore plain = new VmCore("vm-plain", new LinuxVm(profile(false), hv.info()), hv, threads, vms.factories());
        try {
            assertEquals(List.of("uart", "i8042"), plain.devices().stream().map(d -> d.type()).toList(), "no VMBus without Hyper-V");
            assertTrue(!acpiTables(hv).contains("VMBS"), "nor in the DSDT");
        } finally {
            plain.destroy();
        }
        assertEquals(-1, hv.partitions().getLast().hyperVAfterVcpus, "not asked without it");
    }

    @Test
    void aDeviceOfAVmWithoutHyperVGetsNoSynicAndHypercallsWithoutAServerAreUnknown() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore plain = new VmCore("vm-plain", new LinuxVm(profile(false).withDevices(List.of(new DeviceConfig("vmbus", Map.of()))), hv.info()),
                hv, threads, vms.factories());
        plain.destroy();
        assertEquals(Optional.empty(), vms.lastSynic, "a VM that is not a Hyper-V partition has no SynIC to serve");
        // a Hyper-V VM without ACPI gets no VMBus (Linux finds it in the DSDT only); its SynIC is nobody's
        VmCore bare = new VmCore("vm-bare", new LinuxVm(profile(true).withAcpi(false), hv.info()), hv, threads, vms.factories());
        try {
            assertEquals(List.of("uart", "i8042"), bare.devices().stream().map(d -> d.type()).toList());
            assertEquals(SynicHost.HV_STATUS_INVALID_HYPERCALL_CODE, hv.partitions().getLast().synicHost.hypercall(0, SynicHost.HVCALL_POST_MESSAGE, 0, 0));
        } finally {
            bare.destroy();
        }
    }

    @Test
    void aRunningVmIsAskedToShutDownThroughTheDeviceThatCan() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = new VmCore("vm-hv", new LinuxVm(profile(true), hv.info()), hv, threads, vms.factories());
        try {
            vms.shutdownAskable = true;
            assertFalse(vm.requestShutdown(), "not before it runs");
            assertEquals(0, vms.shutdownsAsked.get());
            vm.start();
            assertTrue(vm.requestShutdown());
            assertEquals(1, vms.shutdownsAsked.get());
            vms.shutdownAskable = false;
            assertFalse(vm.requestShutdown(), "the device cannot ask now");
            assertEquals(2, vms.shutdownsAsked.get());
        } finally {
            vm.destroy();
        }
        VmCore plain = new VmCore("vm-plain", new LinuxVm(profile(false), hv.info()), hv, threads, vms.factories());
        try {
            plain.start();
            assertFalse(plain.requestShutdown(), "no device can ask a guest without Hyper-V");
        } finally {
            plain.destroy();
        }
    }

    /** The last partition's ACPI table area, as text. */
    private static String acpiTables(InMemoryHypervisor hv) {
        byte[] bytes = hv.partitions().getLast().memory().read(LinuxLayout.ACPI_TABLES, (int) LinuxLayout.ACPI_TABLES_MAX);
        return new String(bytes, java.nio.charset.StandardCharsets.ISO_8859_1);
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
