package org.nxia.vmm.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.spi.DescriptorTable;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.HostPlacement;
import org.nxia.vmm.spi.HypervisorException;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.spi.PartitionState;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.Segment;
import org.nxia.vmm.spi.SpecialRegisters;
import org.nxia.vmm.spi.StatePart;
import org.nxia.vmm.spi.VcpuState;

/** The API's records check what they are given, and say what they hold. */
class ApiRecordsTest {

    private static final long MIB = VmProfile.MIB;
    private static final Path KERNEL = Path.of("/boot/bzImage");

    private static LinuxProfile linux(int vcpus, long memory, Duration timeout) {
        return new LinuxProfile("l", KERNEL, null, "", vcpus, memory, timeout, List.of());
    }

    @Test
    void linuxProfileTakesOneToThirtyTwoVcpus() {
        assertEquals(1, linux(1, 256 * MIB, Duration.ofSeconds(1)).vcpus());
        assertEquals(LinuxProfile.MAX_VCPUS, linux(LinuxProfile.MAX_VCPUS, 256 * MIB, Duration.ofSeconds(1)).vcpus());
        assertThrows(IllegalArgumentException.class, () -> linux(0, 256 * MIB, Duration.ofSeconds(1)));
        assertThrows(IllegalArgumentException.class, () -> linux(LinuxProfile.MAX_VCPUS + 1, 256 * MIB, Duration.ofSeconds(1)));
    }

    @Test
    void aPlacementNamesEachHostCpuOnceWithinTheMaskAndTravelsWithTheSpec() {
        HostPlacement pinned = new HostPlacement(List.of(0, HostPlacement.MAX_CPU), false, true);
        assertTrue(pinned.requested());
        assertFalse(HostPlacement.NONE.requested());
        assertThrows(IllegalArgumentException.class, () -> new HostPlacement(List.of(-1), false, true));
        assertThrows(IllegalArgumentException.class, () -> new HostPlacement(List.of(HostPlacement.MAX_CPU + 1), false, true));
        assertEquals("host CPUs [1, 1] name a CPU twice",
                assertThrows(IllegalArgumentException.class, () -> new HostPlacement(List.of(1, 1), false, true)).getMessage());
        assertEquals(HostPlacement.NONE, linux(1, 256 * MIB, Duration.ofSeconds(1)).placement(), "not placed unless asked");
        LinuxProfile placed = linux(1, 256 * MIB, Duration.ofSeconds(1)).withPlacement(pinned);
        assertEquals(pinned, placed.withMemory(512 * MIB).withVcpus(2).withName("n").withDevices(List.of()).placement());
        assertEquals(pinned, VmProfile.of(Path.of("g.elf")).withPlacement(pinned).withMemory(32 * MIB).withName("n").placement());
    }

    @Test
    void linuxProfileMemoryIsAMultipleOfTwoMibFrom64MibTo3Gib() {
        assertEquals(64 * MIB, linux(1, 64 * MIB, Duration.ofSeconds(1)).memoryBytes());
        assertEquals(VmProfile.MAX_MEMORY, linux(1, VmProfile.MAX_MEMORY, Duration.ofSeconds(1)).memoryBytes());
        for (long bad : new long[] {62 * MIB, VmProfile.MAX_MEMORY + 2 * MIB, 65 * MIB, 64 * MIB + 1}) {
            String message = assertThrows(IllegalArgumentException.class, () -> linux(1, bad, Duration.ofSeconds(1))).getMessage();
            assertTrue(message.contains("multiple of 2 MiB"), message);
        }
    }

    @Test
    void linuxProfileTimeoutIsPositiveOrNone() {
        assertEquals(LinuxProfile.NO_TIMEOUT, linux(1, 256 * MIB, Duration.ZERO).timeout(), "zero is no limit");
        String message = assertThrows(IllegalArgumentException.class, () -> linux(1, 256 * MIB, Duration.ofSeconds(-1))).getMessage();
        assertTrue(message.contains("or zero (NO_TIMEOUT) for none"), message);
        assertEquals(Duration.ofNanos(1), linux(1, 256 * MIB, Duration.ofNanos(1)).timeout());
    }

    @Test
    void linuxProfileDefaultsAndCopiesItsDevices() {
        LinuxProfile p = LinuxProfile.of(KERNEL, null);
        assertEquals("bzImage", p.name());
        assertEquals(1, p.vcpus());
        assertEquals(LinuxProfile.DEFAULT_MEMORY, p.memoryBytes());
        assertEquals(LinuxProfile.DEFAULT_TIMEOUT, p.timeout());
        assertEquals("", p.cmdline());
        assertEquals(4, p.withVcpus(4).vcpus());
        assertEquals(512 * MIB, p.withMemory(512 * MIB).memoryBytes());
        assertEquals("quiet", p.withCmdline("quiet").cmdline());
        assertEquals(Duration.ofSeconds(7), p.withTimeout(Duration.ofSeconds(7)).timeout());
        assertEquals(List.of(DeviceConfig.parse("uart")), p.withDevices(List.of(DeviceConfig.parse("uart"))).devices());
        assertEquals(List.of(DeviceConfig.parse("uart")),
                VmProfile.of(KERNEL).withDevices(List.of(DeviceConfig.parse("uart"))).devices());
        List<DeviceConfig> devices = new ArrayList<>(List.of(DeviceConfig.parse("uart")));
        LinuxProfile withDevices = new LinuxProfile("l", KERNEL, null, "", 1, 256 * MIB, Duration.ofSeconds(1), devices);
        devices.clear();
        assertEquals(1, withDevices.devices().size(), "the profile keeps its own copy");
    }

    @Test
    void acpiIsOnByDefaultAndEveryCopyKeepsEitherChoice() {
        LinuxProfile p = LinuxProfile.of(KERNEL, null);
        assertEquals(true, p.acpi());
        LinuxProfile off = p.withAcpi(false);
        assertEquals(false, off.acpi());
        for (LinuxProfile copy : List.of(off.withName("n"), off.withVcpus(2), off.withMemory(512 * MIB), off.withCmdline("quiet"),
                off.withTimeout(Duration.ofSeconds(7)), off.withDevices(List.of()), off.withPlacement(HostPlacement.NONE),
                off.withManifest("m"))) {
            assertEquals(false, copy.acpi(), copy.toString());
        }
        assertEquals(true, off.withAcpi(true).acpi());
        assertEquals(false, new LinuxProfile("l", KERNEL, null, "", 1, 256 * MIB, Duration.ofSeconds(1), List.of()).acpi(),
                "the constructors without the flag keep meaning none");
    }

    @Test
    void theManifestIsTheVmsNameUntilOneIsSetAndEveryCopyKeepsIt() {
        LinuxProfile p = LinuxProfile.of(KERNEL, null);
        assertEquals("bzImage", p.manifest(), "named as the VM");
        assertEquals("sysvm", p.withName("sysvm").manifest(), "follows the name while none is set");
        LinuxProfile set = p.withManifest("system");
        assertEquals("system", set.manifest());
        for (LinuxProfile copy : List.of(set.withName("profile perf v3"), set.withVcpus(2), set.withMemory(512 * MIB), set.withCmdline("quiet"),
                set.withTimeout(Duration.ofSeconds(7)), set.withDevices(List.of()), set.withPlacement(HostPlacement.NONE), set.withAcpi(true))) {
            assertEquals("system", copy.manifest(), copy.toString());
        }
        assertEquals("bzImage", set.withManifest(null).manifest(), "null: the name again");
        assertThrows(IllegalArgumentException.class, () -> p.withManifest(" "));
        assertEquals(false, p.equals(set), "the manifest is part of the spec");
    }

    @Test
    void aVmSucceededOnlyWhenItExitedWithStatusZero() {
        assertTrue(new VmResult(VmResult.Reason.EXITED, 0, "", null, Duration.ZERO).succeeded());
        assertFalse(new VmResult(VmResult.Reason.EXITED, 1, "", null, Duration.ZERO).succeeded());
        assertFalse(new VmResult(VmResult.Reason.HALTED, 0, "", null, Duration.ZERO).succeeded());
    }

    @Test
    void aVmResultsOutputCannotBeChangedFromOutside() {
        byte[] bytes = {1, 2, 3};
        VmResult r = new VmResult(VmResult.Reason.EXITED, 0, "", bytes, Duration.ZERO);
        bytes[0] = 9;
        assertArrayEquals(new byte[] {1, 2, 3}, r.output());
        r.output()[1] = 9;
        assertArrayEquals(new byte[] {1, 2, 3}, r.output());
        assertEquals(0, new VmResult(VmResult.Reason.EXITED, 0, "", null, Duration.ZERO).output().length);
    }

    @Test
    void onlyVmxAndSvmBootAStockKernel() {
        assertTrue(HypervisorInfo.Flavour.HARDWARE_VMX.hardwareVirtualization());
        assertTrue(HypervisorInfo.Flavour.HARDWARE_SVM.hardwareVirtualization());
        assertFalse(HypervisorInfo.Flavour.PVM.hardwareVirtualization());
        assertFalse(HypervisorInfo.Flavour.UNKNOWN.hardwareVirtualization());
        assertEquals("PVM (kvm_pvm)", HypervisorInfo.Flavour.PVM.label());
    }

    @Test
    void aHypervisorExceptionNamesItsCallAndErrno() {
        HypervisorException e = new HypervisorException("ioctl(KVM_CREATE_VM)", 12, "out of memory");
        assertEquals("ioctl(KVM_CREATE_VM)", e.call());
        assertEquals(12, e.errno());
        assertEquals("out of memory", e.getMessage());
    }

    @Test
    void guestMemoryReadsBackAShort() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = arena.allocate(4096);
            GuestMemory m = GuestMemory.of(0x1000, ram);
            m.writeShort(0x1001, (short) 0xBEEF);
            assertEquals((short) 0xBEEF, m.readShort(0x1001));
        }
    }

    @Test
    void aStatePartCopiesItsBytesInAndOut() {
        byte[] bytes = {1, 2, 3};
        StatePart p = new StatePart("lapic", bytes);
        bytes[0] = 9;
        p.bytes()[1] = 9;
        assertArrayEquals(new byte[] {1, 2, 3}, p.bytes());
        assertEquals(3, p.size());
        assertEquals(new StatePart("lapic", new byte[] {1, 2, 3}), p, "equal by content");
    }

    /** A clone's state is the snapshot without its RAM; a restore's, the snapshot under the restoring side's spec. */
    @Test
    void aSnapshotWithoutItsRamOrUnderAnotherSpecKeepsEverythingElse() {
        SpecialRegisters special = new SpecialRegisters(seg(), seg(), seg(), seg(), seg(), seg(), seg(), seg(),
                new DescriptorTable(0, 0), new DescriptorTable(0, 0), 0, 0, 0, 0, 0, 0, 0);
        VmProfile spec = VmProfile.of(Path.of("guest.elf")).withMemory(4 * VmProfile.MIB);
        VmSnapshot s = new VmSnapshot(spec, "kvm", List.of(new VmSnapshot.RamChunk(0x1000, MemorySegment.ofArray(new byte[4096]))),
                List.of(new VcpuState(0, Registers.RESET, special, List.of())), new PartitionState(List.of(new StatePart("pit", new byte[2]))),
                List.of(new VmSnapshot.DeviceState("uart", new byte[] {7})));
        VmSnapshot state = s.withoutRam();
        assertEquals(List.of(), state.ram());
        assertEquals(new VmSnapshot(spec, "kvm", List.of(), s.vcpus(), s.partition(), s.devices(), s.portals()), state);
        VmProfile other = spec.withName("other");
        VmSnapshot moved = s.withSpec(other);
        assertEquals(other, moved.spec());
        assertEquals(new VmSnapshot(other, "kvm", s.ram(), s.vcpus(), s.partition(), s.devices(), s.portals()), moved);
    }

    @Test
    void aSavedStateNamesEachPartOnce() {
        SpecialRegisters special = new SpecialRegisters(seg(), seg(), seg(), seg(), seg(), seg(), seg(), seg(),
                new DescriptorTable(0, 0), new DescriptorTable(0, 0), 0, 0, 0, 0, 0, 0, 0);
        List<StatePart> twice = List.of(new StatePart("msrs", new byte[16]), new StatePart("msrs", new byte[0]));
        assertEquals("vCPU 2 state has part 'msrs' twice",
                assertThrows(IllegalArgumentException.class, () -> new VcpuState(2, Registers.RESET, special, twice)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> new PartitionState(twice));
        VcpuState s = new VcpuState(0, Registers.RESET, special, List.of(new StatePart("xsave", new byte[4096])));
        assertEquals(4096, s.part("xsave").orElseThrow().size());
        assertTrue(s.part("lapic").isEmpty());
    }

    private static Segment seg() {
        return new Segment(0, 0xffff, 0, 3, true, 0, false, true, false, false, false);
    }
}
