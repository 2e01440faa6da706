package org.nxia.shell.systemvm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import javax.crypto.SecretKey;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVmSnapshot;
import org.nxia.control.api.SystemVms;
import org.nxia.snapshot.api.SaveProgress;
import org.nxia.snapshot.api.SnapshotKeys;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.spi.RamFile;

/**
 * systemvm:clone without KVM: a real encrypted System VM snapshot file, a launcher that records what
 * it was asked to clone (the RAM file's pages are read while it is asked, as KVM maps them then).
 */
class SystemVmCloneCommandTest {

    @TempDir
    Path dir;

    private final byte[] secret = SystemVmSnapshotFileTest.filled(32, 0x42);
    private final List<SystemVmSnapshot> asked = new ArrayList<>();
    private final List<byte[]> pagesSeen = new ArrayList<>();
    private final List<RamFile> filesSeen = new ArrayList<>();
    /** The launcher fails the clone of this number (1-based), if any. */
    private int failing;

    private SystemVms launcher() {
        return (SystemVms) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {SystemVms.class}, (p, m, a) -> {
            if (!m.getName().equals("clone"))
                throw new UnsupportedOperationException(m.getName());
            RamFile ram = (RamFile) a[1];
            asked.add((SystemVmSnapshot) a[0]);
            filesSeen.add(ram);
            byte[] file = Files.readAllBytes(ram.file());
            pagesSeen.add(java.util.Arrays.copyOfRange(file, 0x2000, 0x3000));
            if (asked.size() == failing)
                throw new IllegalStateException("no memory for the clone");
            String id = "vm-" + (10 + asked.size());
            return new SystemVm() {
                @Override
                public VirtualMachine vm() {
                    return (VirtualMachine) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VirtualMachine.class},
                            (q, n, b) -> n.getName().equals("id") ? id : null);
                }

                @Override
                public AgentSession session() {
                    throw new UnsupportedOperationException();
                }

                @Override
                public Duration readyAfter() {
                    return Duration.ofMillis(700 + asked.size());
                }

                @Override
                public void close() {
                }
            };
        });
    }

    /** {@code key} in an owner-only key file, as snapshot:key writes one. */
    private Path keyFile(SecretKey key) throws Exception {
        Path k = dir.resolve("key");
        Files.deleteIfExists(k);
        Files.write(Files.createFile(k, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"))), key.getEncoded());
        return k;
    }

    @Test
    void eachCloneMapsTheDecryptedPagesAndTakesTheStateWithoutRam() throws Exception {
        assumeTrue(Files.isDirectory(RamTemplate.SHM), "this host has no /dev/shm");
        SecretKey key = SnapshotKeys.generate();
        SystemVmSnapshot s = SystemVmSnapshotFileTest.snapshot(dir, secret);
        Path file = dir.resolve("s.nxsnap");
        SystemVmSnapshotFile.write(s, file, key, SaveProgress.NONE);
        SystemVmSnapshotCommands commands = new SystemVmSnapshotCommands(launcher());
        String out = commands.clone(keyFile(key).toString(), 2, "30s", file.toString());
        assertTrue(out.startsWith("vm-11 vm-12\n2 clones of " + file + ": file read in "), out);
        assertTrue(out.contains("RAM 64 MiB, of it 4 KiB decrypted once into memory and mapped copy-on-write; sessions open 701, 702 ms"), out);
        assertTrue(out.contains("(generation 4,"), out);
        for (int i = 0; i < 2; i++) {
            assertEquals(List.of(), asked.get(i).vm().ram(), "the clone's state holds no RAM");
            assertEquals(s.vm().vcpus(), asked.get(i).vm().vcpus());
            assertArrayEquals(secret, asked.get(i).secret());
            assertEquals(3, asked.get(i).generation());
            assertArrayEquals(SystemVmSnapshotFileTest.filled(4096, 9), pagesSeen.get(i), "the saved page, decrypted, at its guest address");
            assertEquals(List.of(new RamFile.Extent(0x2000, 0x2000, 4096)), filesSeen.get(i).extents());
        }
        assertTrue(filesSeen.getFirst().file().startsWith(RamTemplate.SHM));
        assertTrue(!Files.exists(filesSeen.getFirst().file()), "the decrypted RAM's file is gone once the clones have it");
    }

    @Test
    void aCloneThatFailsAfterOthersNamesThoseThatRun() throws Exception {
        assumeTrue(Files.isDirectory(RamTemplate.SHM), "this host has no /dev/shm");
        SecretKey key = SnapshotKeys.generate();
        Path file = dir.resolve("s.nxsnap");
        SystemVmSnapshotFile.write(SystemVmSnapshotFileTest.snapshot(dir, secret), file, key, SaveProgress.NONE);
        SystemVmSnapshotCommands commands = new SystemVmSnapshotCommands(launcher());
        failing = 3;
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> commands.clone(keyFile(key).toString(), 3, "30s", file.toString()));
        assertEquals("clone 3 of 3 failed: no memory for the clone; vm-11 vm-12 run (control:vms lists them)", e.getMessage());
        assertTrue(!Files.exists(filesSeen.getFirst().file()), "the file goes on failure too");
        asked.clear();
        failing = 1;
        IllegalStateException first = assertThrows(IllegalStateException.class,
                () -> commands.clone(keyFile(key).toString(), 1, "30s", file.toString()));
        assertEquals("no memory for the clone", first.getMessage(), "the first clone's failure as it is");
    }

    @Test
    void badRequestsAreRefusedBeforeTheFileIsRead() throws Exception {
        SystemVmSnapshotCommands commands = new SystemVmSnapshotCommands(launcher());
        Path key = keyFile(SnapshotKeys.generate());
        assertEquals("give 1 to 64 clones, not 0",
                assertThrows(IllegalArgumentException.class, () -> commands.clone(key.toString(), 0, "30s", "x")).getMessage());
        assertEquals("give 1 to 64 clones, not 65",
                assertThrows(IllegalArgumentException.class, () -> commands.clone(key.toString(), 65, "30s", "x")).getMessage());
        assertEquals("no snapshot file x", assertThrows(IllegalArgumentException.class, () -> commands.clone(key.toString(), 64, "30s", "x"))
                .getMessage(), "64 clones may be asked for");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> commands.clone("", 1, "30s", "x")).getMessage()
                .startsWith("give -k KEYFILE"));
        assertEquals("no snapshot file " + dir.resolve("none"), assertThrows(IllegalArgumentException.class,
                () -> commands.clone(key.toString(), 1, "30s", dir.resolve("none").toString())).getMessage());
        assertTrue(asked.isEmpty());
    }
}
