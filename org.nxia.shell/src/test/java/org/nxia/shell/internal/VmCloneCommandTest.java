package org.nxia.shell.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.shell.support.VmSnapshotFile;
import org.nxia.snapshot.api.SnapshotKeys;
import org.nxia.vmm.spi.DescriptorTable;
import org.nxia.vmm.spi.PartitionState;
import org.nxia.vmm.spi.RamFile;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.Segment;
import org.nxia.vmm.spi.SpecialRegisters;
import org.nxia.vmm.spi.VcpuState;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmSnapshot;

/** vm:clone over a VmManager stand-in: what it hands the manager, what it prints, what it refuses before any VM is made. */
class VmCloneCommandTest {

    @TempDir
    Path dir;

    /** The (snapshot, RAM file) pairs the stand-in was asked to clone. */
    private final List<Object[]> asked = new ArrayList<>();

    /** A VmManager whose clone() makes VMs vm-1, vm-2, ... and fails from the {@code failAt}th call on. */
    private VmManager manager(int failAt) {
        return (VmManager) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VmManager.class}, (proxy, method, args) -> {
            if (!method.getName().equals("clone")) {
                throw new AssertionError("vm:clone called " + method.getName());
            }
            asked.add(args);
            if (asked.size() >= failAt) {
                throw new IllegalArgumentException("the backend refused");
            }
            String id = "vm-" + asked.size();
            return Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VirtualMachine.class}, (p, m, a) -> {
                if (m.getName().equals("id")) {
                    return id;
                }
                throw new AssertionError("vm:clone asked a VM for " + m.getName());
            });
        });
    }

    private Path file(boolean encrypted) throws Exception {
        VmProfile profile = VmProfile.of(Path.of("/images/counter.elf")).withMemory(4 * VmProfile.MIB).withTimeout(Duration.ofSeconds(7));
        Segment code = new Segment(0, 0xfffff, 0x10, 11, true, 0, false, true, true, true, false);
        Segment data = new Segment(0, 0xfffff, 0x18, 3, true, 0, true, true, false, true, false);
        SpecialRegisters special = new SpecialRegisters(code, data, data, data, data, data, code, data,
                new DescriptorTable(0x3000, 0x27), new DescriptorTable(0, 0), 0x80050033L, 7, 0x9000, 0x20, 0, 0xd01, 0xfee00900L);
        Registers regs = new Registers(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x100123, 0x202);
        byte[] page = new byte[4096];
        page[7] = 42;
        VmSnapshot s = new VmSnapshot(profile, "kvm", List.of(new VmSnapshot.RamChunk(0x2000, MemorySegment.ofArray(page))),
                List.of(new VcpuState(0, regs, special, List.of())), new PartitionState(List.of()), List.of());
        Path file = dir.resolve(encrypted ? "encrypted.nxsnap" : "plain.nxsnap");
        VmSnapshotFile.write(s, file, encrypted ? SnapshotKeys.generate() : null);
        return file;
    }

    @Test
    void clonesOfAPlainFileAreAskedOfTheManagerWithTheFilesRamAndTheirIdsPrinted() throws Exception {
        Path file = file(false);
        String out = new VmCommands(manager(Integer.MAX_VALUE)).clone(2, file.toString());
        assertEquals("vm-1 vm-2", out.lines().findFirst().orElseThrow());
        assertTrue(out.contains("2 clones of " + file + ": RAM 4 MiB, of it 4 KiB in 1 run of"), out);
        assertEquals(2, asked.size());
        VmSnapshot state = (VmSnapshot) asked.getFirst()[0];
        RamFile ram = (RamFile) asked.getFirst()[1];
        assertEquals(List.of(), state.ram(), "the RAM stays in the file");
        assertEquals(file, ram.file());
        assertEquals(0x2000, ram.extents().getFirst().gpa());
    }

    @Test
    void aFailureAfterSomeClonesStartedNamesThem() throws Exception {
        Path file = file(false);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> new VmCommands(manager(3)).clone(3, file.toString()));
        assertEquals("clone 3 of 3 failed: the backend refused; vm-1 vm-2 run (vm:destroy ends them)", e.getMessage());
        IllegalArgumentException first = assertThrows(IllegalArgumentException.class, () -> new VmCommands(manager(1)).clone(1, file.toString()));
        assertEquals("the backend refused", first.getMessage(), "nothing started: the manager's own words");
    }

    @Test
    void badCountsMissingAndEncryptedFilesAreRefusedBeforeAnyVmIsMade() throws Exception {
        VmCommands commands = new VmCommands(manager(0));
        Path plain = file(false);
        assertEquals("give 1 to 256 clones, not 0", assertThrows(IllegalArgumentException.class, () -> commands.clone(0, plain.toString())).getMessage());
        assertThrows(IllegalArgumentException.class, () -> commands.clone(257, plain.toString()));
        assertEquals("no snapshot file " + dir.resolve("none"),
                assertThrows(IllegalArgumentException.class, () -> commands.clone(1, dir.resolve("none").toString())).getMessage());
        Path encrypted = file(true);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> commands.clone(1, encrypted.toString()));
        assertTrue(e.getMessage().contains("an encrypted snapshot is restored by copy: vm:restore -k KEY " + encrypted), e.getMessage());
        assertEquals(List.of(), asked);
    }
}
