package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.api.VmInfo;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.internal.linux.LinuxLayout;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.internal.micro.MicroVmPorts;

/**
 * Bus dispatch in {@link VmCore}: each kind's policy for accesses nobody
 * serves, the devices' context, and an exit path that allocates nothing.
 */
class VmCoreExitPathTest {

    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final int EXITS = 100_000;

    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final TestVms vms = new TestVms();
    @TempDir
    Path dir;

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    @Test
    void aMicroVmStopsOnAnAccessNobodyServes() throws Exception {
        for (Script.Exit exit : new Script.Exit[] {new Script.PortRead(0x1234, 1), new Script.PortWrite(0x1234, 1, 9),
                new Script.MmioRead(0xd000_0100L, 4), new Script.MmioWrite(0xd000_0100L, 4, 1)}) {
            InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(), exit));
            VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT);
            vm.start();
            VmResult r = vm.await(WAIT);
            assertEquals(VmResult.Reason.GUEST_ERROR, r.reason(), exit.toString());
            assertTrue(r.detail().contains("which no device serves"), r.detail());
            vm.destroy();
        }
    }

    @Test
    void aLinuxVmReadsAllOnesWhereNobodyServesAndCountsIt() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(),
                new Script.PortWrite(0x1234, 1, 9), new Script.MmioRead(0xd010_0000L, 4), new Script.PortRead(0x1234, 1)));
        VmCore vm = vms.linux(hv, threads, dir, 1, VmCore.DESTROY_WAIT);
        vm.start();
        VmResult r = vm.await(WAIT);
        assertEquals(VmResult.Reason.HALTED, r.reason(), r.detail());
        assertEquals(-1, hv.partition().vcpus().getFirst().lastRead());
        assertEquals(3L, vm.info().counters().get("unserved_accesses"));
        vm.destroy();
        // the MMIO read last, so that its answer is the one seen
        InMemoryHypervisor mmio = new InMemoryHypervisor(id -> Script.of(new Script.Halt(), new Script.MmioRead(0xd010_0000L, 4)));
        VmCore last = vms.linux(mmio, threads, dir, 1, VmCore.DESTROY_WAIT);
        last.start();
        assertEquals(VmResult.Reason.HALTED, last.await(WAIT).reason());
        assertEquals(-1, mmio.partition().vcpus().getFirst().lastRead(), "an unserved MMIO read reads all ones");
        org.junit.jupiter.api.Assertions.assertArrayEquals(new byte[0], last.await(WAIT).output(), "a Linux VM's result has no output buffer");
        last.destroy();
    }

    @Test
    void aLinuxVmAnnouncesItsMmioDevicesOnTheCommandLineWithTheirLines() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(), new Script.MmioRead(0xd000_0000L, 4)));
        VmCore vm = vms.linux(hv, threads, dir, 1, VmCore.DESTROY_WAIT, new DeviceConfig("mmio", Map.of()));
        String cmdline = new String(hv.partition().memory().read(LinuxLayout.CMDLINE, 4096), StandardCharsets.US_ASCII);
        cmdline = cmdline.substring(0, cmdline.indexOf('\0'));
        assertTrue(cmdline.endsWith(" virtio_mmio.device=4K@0xd0000000:5"), cmdline);
        assertEquals(5, vms.lastLine.gsi(), "the first free line after COM1's 4");
        vm.start();
        vm.await(WAIT);
        assertEquals(0x7472_6976L, hv.partition().vcpus().getFirst().lastRead(), "the read reached the device");
        vm.destroy();
    }

    @Test
    void aMicroVmDeviceGetsNoInterruptLine() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT, new DeviceConfig("mmio", Map.of()));
        assertNull(vms.lastLine);
        vm.destroy();
    }

    @Test
    void servedExitsAllocateNothingOnTheVcpuThread() throws Exception {
        Script.Exit[] exits = {new Script.PortWrite(MicroVmPorts.BENCH, 4, 1)};
        for (int rounds : new int[] {1_000, EXITS}) {   // the first VM links the classes the path uses
            InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.repeat(rounds, new Script.Halt(), exits));
            VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT);
            vm.start();
            assertEquals(VmResult.Reason.HALTED, vm.await(WAIT).reason());
            VmInfo info = vm.info();
            assertEquals((long) rounds, info.counters().get("bench_exits"));
            if (rounds == EXITS) {
                assertNothingAllocatedPerExit(info, rounds);
            }
            vm.destroy();
        }
    }

    @Test
    void unservedExitsOfALinuxVmAllocateNothingOnTheVcpuThread() throws Exception {
        Script.Exit[] exits = {new Script.PortRead(0x1234, 1), new Script.MmioWrite(0xd010_0000L, 4, 1)};
        for (int rounds : new int[] {1_000, EXITS}) {
            InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.repeat(rounds, new Script.Halt(), exits));
            VmCore vm = vms.linux(hv, threads, dir, 1, VmCore.DESTROY_WAIT);
            vm.start();
            assertEquals(VmResult.Reason.HALTED, vm.await(WAIT).reason());
            VmInfo info = vm.info();
            assertEquals(2L * rounds, info.counters().get("unserved_accesses"));
            if (rounds == EXITS) {
                assertNothingAllocatedPerExit(info, 2 * rounds);
            }
            vm.destroy();
        }
    }

    /** Under one byte per exit: the smallest object is 16 bytes, so no exit allocated one. */
    private static void assertNothingAllocatedPerExit(VmInfo info, int exits) {
        long allocated = info.counters().get("vcpu_thread_allocated_bytes");
        if (allocated >= 0) {   // -1: this JVM does not count per-thread allocation
            assertTrue(allocated < exits, allocated + " bytes allocated on the vCPU thread for " + exits + " exits");
        }
    }
}
