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
}
