package org.nxia.shell.systemvm.internal;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

import org.nxia.control.api.SystemVmSnapshot;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.spi.RamFile;

/**
 * A System VM snapshot's RAM, decrypted once into a file on a memory file system, which
 * {@code SystemVms.clone} maps copy-on-write into each clone. A System VM's snapshot file is
 * encrypted (it holds the agent's secret), so its own pages cannot be mapped; this file holds the
 * plain pages, in memory only, as the guest's RAM does: in a directory of the owner's alone (0700),
 * the file 0600, each saved run of pages at its guest address (the file is sparse over the rest).
 * {@link #close} deletes both: the clones' mappings keep the pages for as long as they run, and the
 * memory goes with the last of them.
 */
final class RamTemplate implements AutoCloseable {

    /** Where the decrypted RAM goes: a tmpfs on every Linux that runs systemd or the rig's init. */
    static final Path SHM = Path.of("/dev/shm");

    private final Path dir;
    private final RamFile ram;

    private RamTemplate(Path dir, RamFile ram) {
        this.dir = dir;
        this.ram = ram;
    }

    /**
     * Writes {@code vm}'s RAM chunks into a new file under {@code tmpfs}, which must be a memory file
     * system (decrypted guest memory never goes to a disk).
     */
    static RamTemplate of(VmSnapshot vm, Path tmpfs) throws IOException {
        if (!Files.isDirectory(tmpfs) || !Files.getFileStore(tmpfs).type().equals("tmpfs")) {
            throw new IllegalArgumentException("a System VM's clones map its RAM decrypted from a file in memory, on a tmpfs at "
                    + tmpfs + ", which this host " + (Files.isDirectory(tmpfs) ? "has as " + Files.getFileStore(tmpfs).type()
                    : "does not have") + "; systemvm:restore copies the RAM instead");
        }
        Path dir = Files.createTempDirectory(tmpfs, "nxia-clone");   // 0700
        Path file = dir.resolve("ram");
        try (FileChannel out = FileChannel.open(file, java.util.Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
            List<RamFile.Extent> extents = new ArrayList<>();
            for (VmSnapshot.RamChunk c : vm.ram()) {   // ascending, inside RAM: VmSnapshot checked them
                var bytes = c.bytes().asByteBuffer();
                while (bytes.hasRemaining()) {
                    out.write(bytes, c.gpa() + bytes.position());
                }
                RamFile.Extent last = extents.isEmpty() ? null : extents.getLast();
                if (last != null && last.end() == c.gpa()) {   // adjacent runs: one mapping
                    extents.set(extents.size() - 1, new RamFile.Extent(last.gpa(), last.fileOffset(), last.length() + c.bytes().byteSize()));
                } else {
                    extents.add(new RamFile.Extent(c.gpa(), c.gpa(), c.bytes().byteSize()));
                }
            }
            return new RamTemplate(dir, new RamFile(file, vm.spec().memoryBytes(), extents));
        } catch (IOException | RuntimeException e) {
            deleteQuietly(file, dir);
            throw e;
        }
    }

    /** {@code s} without its RAM: what each clone takes besides the template's pages. */
    static SystemVmSnapshot withoutRam(SystemVmSnapshot s) {
        return new SystemVmSnapshot(s.profile(), s.vm().withoutRam(), s.secret(), s.generation());
    }

    /** The decrypted RAM, to map; its file is gone once this is closed. */
    RamFile ram() {
        return ram;
    }

    /** Deletes the file and its directory; clones that mapped it keep its pages. */
    @Override
    public void close() {
        deleteQuietly(ram.file(), dir);
    }

    private static void deleteQuietly(Path... paths) {
        for (Path p : paths) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException e) {
                // a leftover under /dev/shm is the owner's alone and goes with the host's next boot
            }
        }
    }
}
