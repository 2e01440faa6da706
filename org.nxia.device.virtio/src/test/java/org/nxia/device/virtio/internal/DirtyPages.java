package org.nxia.device.virtio.internal;

import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Makes a flush observable without a seam in the device: the kernel counts, per
 * mapping, the bytes of its pages that are dirty (written but not yet on disk,
 * whether dirtied through this mapping or through the page cache by a write()),
 * in /proc/self/smaps. A flush that reached the disk (fdatasync, msync) leaves
 * none; a flush that only returned OK, or read back through the page cache,
 * leaves them dirty — the kernel writes back by itself only after 30 s.
 */
public final class DirtyPages {

    private DirtyPages() {
    }

    /**
     * Skips the calling test where {@code file} lives on a file system without
     * writeback (tmpfs): there its pages are dirty for good and a flush shows nothing.
     */
    public static void assumeWriteback(Path file) {
        try {
            String type = Files.getFileStore(file.getParent()).type();
            assumeFalse(type.equals("tmpfs") || type.equals("ramfs"), "no writeback on " + type + ": a flush cannot be observed");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The dirty bytes (Shared_Dirty + Private_Dirty) of the mapping that holds {@code mapped}. */
    public static long dirtyBytes(MemorySegment mapped) {
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc/self/smaps"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        long address = mapped.address();
        boolean inside = false;
        long kib = 0;
        for (String line : lines) {
            int dash = line.indexOf('-');
            int space = line.indexOf(' ');
            if (dash > 0 && space > dash && line.substring(0, dash).chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
                if (inside) {
                    break;
                }
                long start = Long.parseUnsignedLong(line.substring(0, dash), 16);
                long end = Long.parseUnsignedLong(line.substring(dash + 1, space), 16);
                inside = Long.compareUnsigned(address, start) >= 0 && Long.compareUnsigned(address, end) < 0;
            } else if (inside && (line.startsWith("Shared_Dirty:") || line.startsWith("Private_Dirty:"))) {
                kib += Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        return kib * 1024;
    }
}
