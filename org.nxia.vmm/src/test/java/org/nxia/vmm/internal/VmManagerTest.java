package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.HostFunction;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.linux.TestKernel;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.internal.micro.MicroVmPorts;

/** The VM manager on the in-memory hypervisor: ids, lookup, run to the end, time-outs, and host functions coming and going. */
class VmManagerTest {

    @TempDir
    Path dir;
    private VmManagerImpl manager;

    private VmManagerImpl manager(IntFunction<Script> scripts) {
        manager = new VmManagerImpl(new InMemoryHypervisor(scripts));
        return manager;
    }

    @AfterEach
    void deactivate() {
        if (manager != null) {
            manager.deactivate();
        }
    }

    private VmProfile profile() throws Exception {
        return VmProfile.of(Files.write(dir.resolve("g.elf"), ElfBuilder.minimal().build()));
    }

    @Test
    void vmsAreNumberedFoundListedInNumberOrderAndDestroyedOnce() throws Exception {
        VmManagerImpl m = manager(id -> Script.of(new Script.Halt()));
        for (int i = 1; i <= 11; i++) {
            assertEquals("vm-" + i, m.create(profile()).id());
        }
        List<String> ids = m.list().stream().map(VirtualMachine::id).toList();
        assertEquals(List.of("vm-1", "vm-2", "vm-3", "vm-4", "vm-5", "vm-6", "vm-7", "vm-8", "vm-9", "vm-10", "vm-11"), ids,
                "by number, not as text");
        VirtualMachine third = m.find("vm-3").orElseThrow();
        assertEquals("vm-3", third.id());
        assertTrue(m.find("vm-99").isEmpty());
        assertTrue(m.destroy("vm-3"));
        assertFalse(m.destroy("vm-3"), "already gone");
        assertTrue(m.find("vm-3").isEmpty());
        assertEquals(VmState.STOPPED, third.state());
        assertEquals(10, m.list().size());
        assertEquals("in-memory", m.hypervisor().backend());
    }

    @Test
    void runGoesToTheEndWithTheConsoleAndLeavesNothingBehind() throws Exception {
        VmManagerImpl m = manager(id -> Script.of(new Script.Halt(),
                new Script.PortWrite(MicroVmPorts.DEBUG_PUTC, 1, 'h'), new Script.PortWrite(MicroVmPorts.DEBUG_PUTC, 1, 'i'),
                new Script.PortWrite(MicroVmPorts.EXIT, 4, 7)));
        StringBuilder console = new StringBuilder();
        VmResult r = m.run(profile(), console);
        assertEquals(VmResult.Reason.EXITED, r.reason());
        assertEquals(7, r.exitStatus());
        assertEquals("hi", console.toString());
        assertTrue(m.list().isEmpty(), "a run's VM is destroyed after it");
        assertEquals(VmResult.Reason.EXITED, m.run(profile(), null).reason(), "no console is fine too");
    }

    @Test
    void aRunPastItsTimeoutIsStoppedAndSaysSo() throws Exception {
        VmManagerImpl m = manager(id -> Script.untilStopped());
        VmResult r = m.run(profile().withTimeout(Duration.ofMillis(200)), null);
        assertEquals(VmResult.Reason.TIMEOUT, r.reason());
        assertEquals("the guest ran past its 200 ms timeout and was stopped; give a longer --timeout if it needs more", r.detail());
        assertTrue(m.list().isEmpty());
    }

    @Test
    void aLinuxVmRunsWithTheInstalledDevices() throws Exception {
        VmManagerImpl m = manager(id -> Script.of(new Script.Halt()));
        TestVms stand = new TestVms();
        for (Map.Entry<String, DeviceFactory> f : stand.factories().entrySet()) {
            m.addDeviceFactory(f.getValue(), Map.of(DeviceFactory.TYPE_PROPERTY, f.getKey()));
        }
        Path kernel = Files.write(dir.resolve("bzImage"), TestKernel.image());
        LinuxProfile profile = LinuxProfile.of(kernel, null).withMemory(LinuxProfile.MIN_MEMORY);
        VmResult r = m.run(profile, null);
        assertEquals(VmResult.Reason.HALTED, r.reason(), r.detail());
        assertEquals("vCPU 0 halted", r.detail());
        assertTrue(m.list().isEmpty());
        VirtualMachine vm = m.create(profile);
        assertEquals("vm-2", vm.id());
        assertSame(vm, m.find("vm-2").orElseThrow());
    }

    @Test
    void hostFunctionsAreCallableOnceAddedAndNotAfterRemoval() throws Exception {
        long block = 0x20_0000;
        AtomicInteger calls = new AtomicInteger();
        HostFunction count = (argument, result) -> {
            calls.incrementAndGet();
            return 0;
        };
        Map<String, Object> props = Map.of(HostFunction.NAME_PROPERTY, "count");
        for (boolean added : new boolean[] {true, false}) {
            InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(),
                    new Script.PortWrite(MicroVmPorts.HOSTCALL, 4, (int) block)));
            VmManagerImpl m = new VmManagerImpl(hv);
            m.setCallPolicy(RecordingPolicy.allowingAll());
            m.addHostFunction(count, props);
            if (!added) {
                m.removeHostFunction(count, props);
            }
            VirtualMachine vm = m.create(profile());
            GuestMemory memory = hv.partition().memory();
            memory.writeInt(block, HostCalls.MAGIC);
            memory.writeShort(block + 4, (short) HostCalls.VERSION);
            memory.write(block + HostCalls.NAME_OFFSET, "count".getBytes(StandardCharsets.US_ASCII));
            vm.start();
            assertEquals(VmResult.Reason.HALTED, vm.await(Duration.ofSeconds(30)).reason());
            assertEquals(added ? HostCalls.OK : HostCalls.ENOENT, memory.readInt(block + 8), "added: " + added);
            m.deactivate();
            assertTrue(m.list().isEmpty(), "deactivation destroys every VM");
        }
        assertEquals(1, calls.get());
    }

    @Test
    void hostCallsArePolicedUnlessTheFunctionSaysItPolicesItself() throws Exception {
        long block = 0x20_0000;
        HostFunction none = (argument, result) -> 0;
        for (boolean self : new boolean[] {false, true}) {
            InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(),
                    new Script.PortWrite(MicroVmPorts.HOSTCALL, 4, (int) block)));
            VmManagerImpl m = new VmManagerImpl(hv);
            RecordingPolicy denying = new RecordingPolicy(r -> false);
            m.setCallPolicy(denying);
            m.addHostFunction(none, self ? Map.of(HostFunction.NAME_PROPERTY, "f", HostFunction.POLICY_PROPERTY, HostFunction.POLICES_ITSELF)
                    : Map.of(HostFunction.NAME_PROPERTY, "f"));
            VirtualMachine vm = m.create(profile());
            GuestMemory memory = hv.partition().memory();
            memory.writeInt(block, HostCalls.MAGIC);
            memory.writeShort(block + 4, (short) HostCalls.VERSION);
            memory.write(block + HostCalls.NAME_OFFSET, "f".getBytes(StandardCharsets.US_ASCII));
            vm.start();
            assertEquals(VmResult.Reason.HALTED, vm.await(Duration.ofSeconds(30)).reason());
            assertEquals(self ? HostCalls.OK : HostCalls.EPERM, memory.readInt(block + 8), "polices itself: " + self);
            assertEquals(self ? 0 : 1, denying.checked.size());
            if (!self) {
                assertEquals("guest:" + vm.id(), denying.checked.get(0).caller());
            }
            m.unsetCallPolicy(denying);
            if (!self) {
                // the policy that left is asked nothing more
                VirtualMachine after = m.create(profile());
                memory = hv.partitions().getLast().memory();
                memory.writeInt(block, HostCalls.MAGIC);
                memory.writeShort(block + 4, (short) HostCalls.VERSION);
                memory.write(block + HostCalls.NAME_OFFSET, "f".getBytes(StandardCharsets.US_ASCII));
                after.start();
                assertEquals(VmResult.Reason.HALTED, after.await(Duration.ofSeconds(30)).reason());
                assertEquals(1, denying.checked.size(), "an unset policy is not asked");
            }
            m.deactivate();
        }
    }
}
