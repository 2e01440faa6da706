package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.spi.HostPlacement;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.spi.RamFile;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.linux.TestKernel;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.internal.memhv.ScriptedVcpu;

/**
 * Clones ({@link VmManagerImpl#clone}) on the in-memory hypervisor: RAM comes from the file's
 * extents through the partition (its stand-in copies, KVM maps copy-on-write), everything else
 * from the snapshot, and what the clone cannot be is refused with no VM left behind.
 */
class VmCloneTest {

    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final long PAGE = 4096;
    private static final long MARK = 0x20_0000;

    private final TestVms vms = new TestVms();
    private InMemoryHypervisor hv;
    private VmManagerImpl manager;
    @TempDir
    Path dir;

    @BeforeEach
    void platform() {
        hv = new InMemoryHypervisor(id -> Script.untilStopped());
        manager = new VmManagerImpl(hv);
        for (Map.Entry<String, DeviceFactory> f : vms.factories().entrySet()) {
            manager.addDeviceFactory(f.getValue(), Map.of(DeviceFactory.TYPE_PROPERTY, f.getKey()));
        }
    }

    @AfterEach
    void shutdown() {
        manager.deactivate();
    }

    /** A paused micro-VM's snapshot, with bytes 1..4 at MARK and the partition's clock at 77. */
    private VmSnapshot saved(DeviceConfig... devices) throws Exception {
        Path image = Files.write(dir.resolve("guest.elf"), ElfBuilder.minimal().build());
        return saved((VmCore) manager.create(VmProfile.of(image).withDevices(List.of(devices))));
    }

    /** {@code vm} started, marked, paused, saved and destroyed. */
    private VmSnapshot saved(VmCore vm) throws Exception {
        vm.start();
        assertTrue(hv.partitions().getFirst().vcpus().getFirst().awaitEntered(WAIT.toMillis()));
        vm.memory().write(MARK, new byte[] {1, 2, 3, 4});
        hv.partitions().getFirst().clock = 77;
        vm.pause();
        VmSnapshot s = vm.snapshot();
        manager.destroy(vm.id());
        return s;
    }

    /** The snapshot without RAM: a clone's state. */
    private static VmSnapshot stateOnly(VmSnapshot s) {
        return s.withoutRam();
    }

    /** A file holding one page of the snapshot's RAM, the one at MARK, at file offset 4096 (a page of header before it). */
    private RamFile markPageFile(VmSnapshot s) throws Exception {
        byte[] file = new byte[(int) (2 * PAGE)];
        for (VmSnapshot.RamChunk c : s.ram()) {
            if (c.gpa() <= MARK && MARK < c.end()) {
                byte[] page = c.bytes().asSlice(MARK - c.gpa(), PAGE).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
                System.arraycopy(page, 0, file, (int) PAGE, (int) PAGE);
            }
        }
        Path path = Files.write(dir.resolve("ram.nxsnap"), file);
        return new RamFile(path, s.spec().memoryBytes(), List.of(new RamFile.Extent(MARK, PAGE, PAGE)));
    }

    @Test
    void clonesTakeRamFromTheFileAndTheRestFromTheSnapshotAndRun() throws Exception {
        VmSnapshot s = saved(new DeviceConfig("mmio", Map.of("state", "queue=7")));
        RamFile ram = markPageFile(s);
        byte[] fileBefore = Files.readAllBytes(ram.file());
        VirtualMachine one = manager.clone(stateOnly(s), ram);
        VirtualMachine two = manager.clone(stateOnly(s), ram);
        for (int i = 1; i <= 2; i++) {
            InMemoryHypervisor.InMemoryPartition p = hv.partitions().get(i);
            assertEquals(List.of(ram), p.mappedFrom, "the clone's RAM came from the file");
            assertArrayEquals(new byte[] {1, 2, 3, 4}, p.memory().read(MARK, 4));
            assertEquals(0, p.memory().read(0x1000, 1)[0] | p.memory().read(MARK + PAGE, 1)[0],
                    "pages the file does not hold are zero, whatever loading the new VM wrote");
            assertEquals(77, p.clock, "the partition's state is the snapshot's");
            ScriptedVcpu vcpu = p.vcpus().getFirst();
            assertEquals(1, vcpu.restoredRuns(), "the vCPU got its saved state");
            assertTrue(vcpu.awaitEntered(WAIT.toMillis()));
        }
        assertEquals(VmState.RUNNING, one.state());
        assertEquals(VmState.RUNNING, two.state());
        assertEquals(List.of("queue=7", "queue=7"), vms.restoredStates, "each clone's device got its saved state");
        assertArrayEquals(fileBefore, Files.readAllBytes(ram.file()));
        assertEquals(List.of(one, two), manager.list());
    }

    /** A Linux VM is cloned as a micro-VM is: a Linux VM made from its spec, RAM from the file. */
    @Test
    void aLinuxVmIsClonedFromItsSpecWithRamFromTheFile() throws Exception {
        vms.platformSaved = true;
        Path kernel = Files.write(dir.resolve("bzImage"), TestKernel.image());
        LinuxProfile profile = LinuxProfile.of(kernel, null).withMemory(LinuxProfile.MIN_MEMORY)
                .withDevices(List.of(new DeviceConfig("mmio", Map.of("state", "linux"))));
        VmSnapshot s = saved((VmCore) manager.create(profile));
        RamFile ram = markPageFile(s);
        VirtualMachine clone = manager.clone(stateOnly(s), ram);
        InMemoryHypervisor.InMemoryPartition p = hv.partitions().getLast();
        assertEquals(profile, clone.spec(), "a Linux VM of the saved spec");
        assertEquals(List.of(ram), p.mappedFrom);
        assertArrayEquals(new byte[] {1, 2, 3, 4}, p.memory().read(MARK, 4));
        byte[] all = p.memory().read(0, (int) LinuxProfile.MIN_MEMORY);
        java.util.Arrays.fill(all, (int) MARK, (int) (MARK + PAGE), (byte) 0);
        assertTrue(java.util.Arrays.equals(new byte[all.length], all), "what loading the kernel and boot data wrote is gone");
        assertEquals(List.of("linux"), vms.restoredStates);
        assertTrue(p.vcpus().getFirst().awaitEntered(WAIT.toMillis()));
        assertEquals(VmState.RUNNING, clone.state());
    }

    @Test
    void whatACloneCannotBeIsRefusedAndLeavesNoVm() throws Exception {
        VmSnapshot s = saved();
        RamFile ram = markPageFile(s);
        VmSnapshot state = stateOnly(s);

        IllegalArgumentException withRam = assertThrows(IllegalArgumentException.class, () -> manager.clone(s, ram));
        assertTrue(withRam.getMessage().startsWith("a clone's RAM is the file's; the snapshot holds"), withRam.getMessage());

        VmProfile huge = ((VmProfile) s.spec()).withPlacement(new HostPlacement(List.of(), true, true));
        VmSnapshot placed = new VmSnapshot(huge, s.backend(), List.of(), s.vcpus(), s.partition(), s.devices());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> manager.clone(placed, ram)).getMessage()
                .contains("cannot be placed on huge pages"));

        RamFile otherSize = new RamFile(ram.file(), 2 * s.spec().memoryBytes(), ram.extents());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> manager.clone(state, otherSize)).getMessage()
                .contains("describes " + 2 * s.spec().memoryBytes() + " bytes of RAM"));

        RamFile past = new RamFile(ram.file(), ram.ramBytes(), List.of(new RamFile.Extent(MARK, 2 * PAGE, PAGE)));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> manager.clone(state, past)).getMessage()
                .contains("past the end"));
        assertEquals(List.of(), manager.list(), "no VM left behind");
        assertTrue(hv.partitions().getLast().closed(), "the VM that could not take the file is gone");
    }
}
