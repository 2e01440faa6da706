package org.nxia.shell.systemvm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import javax.crypto.SecretKey;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.control.api.SystemVmSnapshot;
import org.nxia.shell.support.VmSnapshotFile;
import org.nxia.snapshot.api.SaveProgress;
import org.nxia.snapshot.api.SnapshotKeys;
import org.nxia.vmm.spi.DescriptorTable;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.spi.PartitionState;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.Segment;
import org.nxia.vmm.spi.SpecialRegisters;
import org.nxia.vmm.spi.VcpuState;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.device.DeviceConfig;

/** A System VM's snapshot through a file: the agent's state kept, encrypted only, and host files that changed refused. */
class SystemVmSnapshotFileTest {

    @TempDir
    Path dir;

    private final SecretKey key = SnapshotKeys.generate();
    private final byte[] secret = filled(32, 0x42);

    static byte[] filled(int n, int value) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) value);
        return b;
    }

    private SystemVmSnapshot snapshot() throws Exception {
        return snapshot(dir, secret);
    }

    /** A System VM's snapshot with one RAM page (9s at 0x2000), its host files in {@code dir}, generation 3. */
    static SystemVmSnapshot snapshot(Path dir, byte[] secret) throws Exception {
        Path kernel = Files.write(dir.resolve("bzImage"), filled(100, 1));
        Path initrd = Files.write(dir.resolve("initramfs"), filled(50, 2));
        Path root = Files.write(dir.resolve("root.ext4"), filled(4096, 3));
        LinuxProfile profile = new LinuxProfile("sysvm", kernel, initrd, "nxia.root=/dev/vda", 1, 64 * VmProfile.MIB,
                Duration.ofMinutes(5), List.of(DeviceConfig.parse("virtio-blk:path=" + root + ",ro=true")));
        LinuxProfile withAgent = profile.withDevices(new ArrayList<>(profile.devices()) {{
            add(DeviceConfig.parse("virtio-vsock:cid=3,uds=/tmp/gone/vsock"));
        }});
        Segment seg = new Segment(0, 0xfffff, 0x10, 11, true, 0, false, true, true, true, false);
        VcpuState vcpu = new VcpuState(0, new Registers(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x1000, 2),
                new SpecialRegisters(seg, seg, seg, seg, seg, seg, seg, seg, new DescriptorTable(0, 0), new DescriptorTable(0, 0),
                        0x80050033L, 0, 0, 0x20, 0, 0xd01, 0xfee00900L), List.of());
        VmSnapshot vm = new VmSnapshot(withAgent, "kvm", List.of(new VmSnapshot.RamChunk(0x2000, MemorySegment.ofArray(filled(4096, 9)))),
                List.of(vcpu), new PartitionState(List.of()), List.of(new VmSnapshot.DeviceState("virtio-blk", new byte[] {4})));
        return new SystemVmSnapshot(profile, vm, secret, 3);
    }

    @Test
    void theVmItsProfileAndItsAgentsMomentComeBack() throws Exception {
        SystemVmSnapshot s = snapshot();
        Path file = dir.resolve("s.nxsnap");
        SystemVmSnapshotFile.write(s, file, key, SaveProgress.NONE);
        SystemVmSnapshot back = SystemVmSnapshotFile.read(file, key);
        assertEquals(s.profile(), back.profile());
        assertEquals(s.vm().spec(), back.vm().spec());
        assertEquals(3, back.generation());
        assertArrayEquals(secret, back.secret());
        assertEquals(s.vm().devices(), back.vm().devices());
        assertEquals(-1, s.vm().ram().getFirst().bytes().mismatch(back.vm().ram().getFirst().bytes()));
        assertFalse(new String(Files.readAllBytes(file), java.nio.charset.StandardCharsets.ISO_8859_1)
                .contains(new String(secret, java.nio.charset.StandardCharsets.ISO_8859_1)), "the secret is not in the file in the clear");
    }

    @Test
    void itIsWrittenEncryptedOnly() throws Exception {
        Path file = dir.resolve("s.nxsnap");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SystemVmSnapshotFile.write(snapshot(), file, null, SaveProgress.NONE))
                .getMessage().contains("encrypted only"));
        assertFalse(Files.exists(file));
    }

    @Test
    void aRootImageRebuiltOrGoneSinceTheSaveIsRefused() throws Exception {
        SystemVmSnapshot s = snapshot();
        Path file = dir.resolve("s.nxsnap");
        SystemVmSnapshotFile.write(s, file, key, SaveProgress.NONE);
        Path root = dir.resolve("root.ext4");
        Files.write(root, filled(8192, 3));
        String changed = assertThrows(IllegalArgumentException.class, () -> SystemVmSnapshotFile.read(file, key)).getMessage();
        assertTrue(changed.contains(root + " changed since the snapshot (4096 bytes then, 8192 now"), changed);
        Files.write(root, filled(4096, 7));
        Files.setLastModifiedTime(root, FileTime.fromMillis(1000));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SystemVmSnapshotFile.read(file, key)).getMessage()
                .contains("modified since"));
        Files.delete(dir.resolve("bzImage"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SystemVmSnapshotFile.read(file, key)).getMessage()
                .contains("bzImage is gone"));
    }

    @Test
    void aMicroVmsFileIsNotTakenForASystemVms() throws Exception {
        SystemVmSnapshot s = snapshot();
        VmSnapshot micro = new VmSnapshot(VmProfile.of(dir.resolve("x.elf")).withMemory(4 * VmProfile.MIB), "kvm", List.of(),
                s.vm().vcpus(), s.vm().partition(), List.of());
        Path file = dir.resolve("m.nxsnap");
        VmSnapshotFile.write(micro, file, key);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SystemVmSnapshotFile.read(file, key)).getMessage()
                .contains("is not a System VM's snapshot"));
    }

    @Test
    void theAgentsSectionIsChecked() {
        byte[] ok = SystemVmSnapshotFile.agent(5, secret);
        assertEquals(5, SystemVmSnapshotFile.agent(ok).generation());
        byte[] shortSecret = SystemVmSnapshotFile.agent(5, new byte[8]);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SystemVmSnapshotFile.agent(shortSecret)).getMessage()
                .contains("a secret of 8 bytes"));
        byte[] negative = SystemVmSnapshotFile.agent(-1, secret);
        assertThrows(IllegalArgumentException.class, () -> SystemVmSnapshotFile.agent(negative));
        assertThrows(IllegalArgumentException.class, () -> SystemVmSnapshotFile.agent(Arrays.copyOf(ok, ok.length - 1)));
        byte[] files = SystemVmSnapshotFile.files(List.of());
        files[4] = 0x7f;   // a count far past the bound
        assertThrows(IllegalArgumentException.class, () -> SystemVmSnapshotFile.files(files));
    }
}
