package org.nxia.shell.systemvm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.spi.PartitionState;
import org.nxia.vmm.spi.DescriptorTable;
import org.nxia.vmm.spi.RamFile;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.Segment;
import org.nxia.vmm.spi.SpecialRegisters;
import org.nxia.vmm.spi.VcpuState;

/** A System VM snapshot's RAM written into a tmpfs file for copy-on-write clones. */
class RamTemplateTest {

    private static final int PAGE = 4096;

    @TempDir
    Path dir;

    private static VmSnapshot.RamChunk chunk(long gpa, int pages, int fill) {
        byte[] b = new byte[pages * PAGE];
        Arrays.fill(b, (byte) fill);
        return new VmSnapshot.RamChunk(gpa, MemorySegment.ofArray(b));
    }

    private VmSnapshot snapshot(List<VmSnapshot.RamChunk> ram) {
        LinuxProfile p = LinuxProfile.of(dir.resolve("bzImage"), null).withMemory(LinuxProfile.MIN_MEMORY);
        Segment seg = new Segment(0, 0xfffff, 0x10, 11, true, 0, false, true, true, true, false);
        VcpuState vcpu = new VcpuState(0, new Registers(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x1000, 2),
                new SpecialRegisters(seg, seg, seg, seg, seg, seg, seg, seg, new DescriptorTable(0, 0), new DescriptorTable(0, 0),
                        0x80050033L, 0, 0, 0x20, 0, 0xd01, 0xfee00900L), List.of());
        return new VmSnapshot(p, "kvm", ram, List.of(vcpu), new PartitionState(List.of()), List.of());
    }

    @Test
    void eachRunLiesAtItsGuestAddressAdjacentRunsAreOneExtentAndCloseDeletesTheFile() throws Exception {
        assumeTrue(Files.isDirectory(RamTemplate.SHM), "this host has no /dev/shm");
        // two of them adjacent (a 64 MiB chunk boundary is such a seam)
        VmSnapshot s = snapshot(List.of(chunk(0x1000, 2, 1), chunk(0x3000, 1, 2), chunk(0x10_0000, 1, 3)));
        Path file;
        Path parent;
        try (RamTemplate t = RamTemplate.of(s, RamTemplate.SHM)) {
            RamFile ram = t.ram();
            file = ram.file();
            parent = file.getParent();
            assertEquals(LinuxProfile.MIN_MEMORY, ram.ramBytes());
            assertEquals(List.of(new RamFile.Extent(0x1000, 0x1000, 3L * PAGE), new RamFile.Extent(0x10_0000, 0x10_0000, PAGE)),
                    ram.extents());
            byte[] bytes = Files.readAllBytes(file);
            assertEquals(0x10_0000 + PAGE, bytes.length, "the file ends with the last run");
            assertEquals(0, bytes[0], "before the first run: a hole");
            assertEquals(1, bytes[0x1000]);
            assertEquals(1, bytes[0x2fff]);
            assertEquals(2, bytes[0x3000]);
            assertEquals(0, bytes[0x4000], "between runs: a hole");
            assertEquals(3, bytes[0x10_0000 + PAGE - 1]);
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(parent)));
            assertTrue(parent.startsWith(RamTemplate.SHM));
        }
        assertFalse(Files.exists(file), "the decrypted RAM's file is gone");
        assertFalse(Files.exists(parent));
    }

    @Test
    void aDiskIsRefusedDecryptedRamStaysInMemory() throws Exception {
        assumeTrue(!Files.getFileStore(dir).type().equals("tmpfs"), "the temporary directory is a tmpfs here");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> RamTemplate.of(snapshot(List.of(chunk(0, 1, 1))), dir));
        assertTrue(e.getMessage().startsWith("a System VM's clones map its RAM decrypted from a file in memory, on a tmpfs at " + dir
                + ", which this host has as "), e.getMessage());
        try (var left = Files.list(dir)) {
            assertArrayEquals(new Object[0], left.toArray(), "nothing written");
        }
        IllegalArgumentException none = assertThrows(IllegalArgumentException.class,
                () -> RamTemplate.of(snapshot(List.of()), dir.resolve("nowhere")));
        assertTrue(none.getMessage().contains("which this host does not have"), none.getMessage());
    }

    @Test
    void aClonesStateIsTheSnapshotWithoutItsRam() {
        VmSnapshot vm = snapshot(List.of(chunk(0x1000, 1, 1)));
        org.nxia.control.api.SystemVmSnapshot s = new org.nxia.control.api.SystemVmSnapshot((LinuxProfile) vm.spec(), vm, new byte[32], 4);
        org.nxia.control.api.SystemVmSnapshot state = RamTemplate.withoutRam(s);
        assertEquals(List.of(), state.vm().ram());
        assertEquals(new VmSnapshot(vm.spec(), vm.backend(), List.of(), vm.vcpus(), vm.partition(), vm.devices(), vm.portals()), state.vm());
        assertEquals(s.profile(), state.profile());
        assertEquals(4, state.generation());
        assertArrayEquals(s.secret(), state.secret());
    }
}
