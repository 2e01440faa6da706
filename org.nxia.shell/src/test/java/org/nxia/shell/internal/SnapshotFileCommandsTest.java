package org.nxia.shell.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import javax.crypto.SecretKey;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.snapshot.api.RamPages;
import org.nxia.snapshot.api.Requirements;
import org.nxia.snapshot.api.SaveProgress;
import org.nxia.snapshot.api.SnapshotFormatException;
import org.nxia.snapshot.api.SnapshotKeys;
import org.nxia.snapshot.api.SnapshotWriter;

/** snapshot:list, info, verify and key on real snapshot files, good, damaged and encrypted. */
class SnapshotFileCommandsTest {

    @TempDir
    Path dir;

    final SnapshotFileCommands commands = new SnapshotFileCommands();

    Path write(String name, SecretKey key) throws Exception {
        Path file = dir.resolve(name);
        Requirements req = new Requirements("x86_64", "kvm", new byte[] {1, 2, 3}, new byte[0]);
        try (Arena arena = Arena.ofConfined();
             SnapshotWriter w = key == null ? SnapshotWriter.create(file, req) : SnapshotWriter.createEncrypted(file, req, key)) {
            MemorySegment ram = arena.allocate(4L << 20, 4096);
            ram.set(ValueLayout.JAVA_LONG, 3 * 4096, 0x1234_5678L);   // one page touched of 1024
            w.section("vcpu.0", new byte[100]);
            w.ram(ram, RamPages.all(), SaveProgress.NONE);
            w.finish();
        }
        return file;
    }

    @Test
    void infoShowsTheHeaderRequirementsAndSections() throws Exception {
        Path f = write("a.snap", null);
        String info = commands.info("", f.toString());
        assertTrue(info.contains("encrypted   no"), info);
        assertTrue(info.contains("requires    x86_64, backend kvm, cpu signature 3 bytes"), info);
        assertTrue(info.contains("RAM         4 MiB, 4 KiB stored"), info);
        assertTrue(info.contains("vcpu.0"), info);
        assertTrue(commands.verify("", f.toString()).startsWith("OK "), "a good file verifies");
    }

    @Test
    void aDamagedFileIsRefusedWithWhatIsWrong() throws Exception {
        Path f = write("b.snap", null);
        long size = Files.size(f);
        try (FileChannel c = FileChannel.open(f, StandardOpenOption.WRITE, StandardOpenOption.READ)) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1);
            c.read(b, size - 4096 + 17);   // a byte of the stored guest page
            b.put(0, (byte) (b.get(0) ^ 0x40)).rewind();
            c.write(b, size - 4096 + 17);
        }
        SnapshotFormatException e = assertThrows(SnapshotFormatException.class, () -> commands.verify("", f.toString()));
        assertTrue(e.getMessage().toLowerCase().contains("hash") || e.getMessage().contains("SHA"), e.getMessage());
        Files.write(dir.resolve("junk.snap"), new byte[] {1, 2, 3});
        String list = commands.list(dir.toString());
        assertTrue(list.contains("junk.snap") && list.contains("not a valid snapshot"), list);
        assertThrows(IllegalArgumentException.class, () -> commands.info("", dir.resolve("none").toString()));
    }

    @Test
    void anEncryptedFileIsCheckedWithItsKeyAndAKeyIsNeverOverwritten() throws Exception {
        Path keyFile = dir.resolve("snap.key");
        assertTrue(commands.key(keyFile.toString()).contains("mode 0600"));
        assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(keyFile)));
        assertThrows(IllegalArgumentException.class, () -> commands.key(keyFile.toString()));
        Path f = write("c.snap", SnapshotKeys.load(keyFile));
        assertTrue(commands.verify(keyFile.toString(), f.toString()).contains("every chunk authenticated with the key"));
        assertTrue(commands.verify("", f.toString()).contains("give --key"));
        Path other = dir.resolve("other.key");
        commands.key(other.toString());
        assertThrows(SnapshotFormatException.class, () -> commands.verify(other.toString(), f.toString()), "the wrong key");
        String list = commands.list(dir.toString());
        assertTrue(list.contains("c.snap") && list.contains("encrypted"), list);
    }
}
