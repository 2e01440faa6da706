package org.nxia.backend.kvm.internal;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

import org.nxia.vmm.spi.RamFile;

/**
 * Guest RAM made of a file's pages, copy-on-write: over the RAM's host range (which stays where it
 * is, so the KVM slot and every view of it stay valid) a private anonymous mapping gives zero pages,
 * and each extent of the file is mapped {@code MAP_PRIVATE | MAP_FIXED} at its guest offset. Clones
 * of one file then share its page-cache pages until they write them; a write makes a private copy
 * and never reaches the file.
 *
 * <p>Each mapped extent is a kernel mapping, two with the zero pages after it, and a process may
 * hold {@code vm.max_map_count} (65,530 by default): at most {@link #MAX_MAPPED_EXTENTS} extents
 * are mapped, the largest; the rest are copied into the zero pages.
 */
final class CopyOnWriteRam {

    static final long PAGE = 4096;
    /** Extents mapped per RAM; more are copied (see the class comment). */
    static final int MAX_MAPPED_EXTENTS = 1024;

    private CopyOnWriteRam() {
    }

    /**
     * Maps {@code ram}'s file over {@code range} (a page-aligned mapping this class may replace, of
     * {@code ram.ramBytes()}). Every extent is checked against the file's size and the range before
     * anything is mapped.
     *
     * @return bytes copied rather than mapped (extents past {@link #MAX_MAPPED_EXTENTS})
     */
    static long map(MemorySegment range, RamFile ram) {
        if (range.byteSize() != ram.ramBytes() || range.address() % PAGE != 0) {
            throw new IllegalArgumentException("guest RAM is %d bytes at 0x%x; %s describes %d".formatted(range.byteSize(),
                    range.address(), ram.file(), ram.ramBytes()));
        }
        int fd = Libc.open(ram.file().toString(), Libc.O_RDONLY | Libc.O_CLOEXEC);
        try {
            long fileSize = Libc.seek(fd, 0, Libc.SEEK_END);
            for (RamFile.Extent e : ram.extents()) {
                // RamFile checked alignment, order and RAM's bounds; the file's size is known only here
                if (e.fileOffset() + e.length() > fileSize) {
                    throw new IllegalArgumentException("RAM extent at 0x%x (+0x%x) lies at 0x%x in %s, past its %d bytes"
                            .formatted(e.gpa(), e.length(), e.fileOffset(), ram.file(), fileSize));
                }
            }
            List<RamFile.Extent> mapped = new ArrayList<>(ram.extents());
            List<RamFile.Extent> copied = List.of();
            if (mapped.size() > MAX_MAPPED_EXTENTS) {
                mapped.sort(Comparator.comparingLong(RamFile.Extent::length).reversed());
                copied = List.copyOf(mapped.subList(MAX_MAPPED_EXTENTS, mapped.size()));
                mapped = List.copyOf(mapped.subList(0, MAX_MAPPED_EXTENTS));
            }
            int prot = Libc.PROT_READ | Libc.PROT_WRITE;
            // NORESERVE: the RAM was lazily allocated before (the placement allows overcommit) and is still;
            // without it every clone would charge all of its RAM to the host's commit limit up front.
            Libc.mmapFixed(range, prot, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE, -1, 0, "guest RAM, zero pages");
            try {
                for (RamFile.Extent e : mapped) {
                    Libc.mmapFixed(range.asSlice(e.gpa(), e.length()), prot, Libc.MAP_PRIVATE | Libc.MAP_NORESERVE, fd, e.fileOffset(),
                            "guest RAM from " + ram.file());
                }
                long copiedBytes = 0;
                for (RamFile.Extent e : copied) {
                    MemorySegment target = range.asSlice(e.gpa(), e.length());
                    for (long done = 0; done < e.length(); ) {
                        long n = Libc.pread(fd, target.asSlice(done), e.fileOffset() + done);
                        if (n == 0) {
                            throw new IllegalArgumentException(ram.file() + " ended while its RAM was read (it changed)");
                        }
                        done += n;
                    }
                    copiedBytes += e.length();
                }
                return copiedBytes;
            } catch (RuntimeException e) {
                // a failed MAP_FIXED may leave a hole; zero pages again, so no view of RAM faults before the VM is gone
                try {
                    Libc.mmapFixed(range, prot, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE, -1, 0, "guest RAM, zero pages");
                } catch (KvmException again) {
                    e.addSuppressed(again);
                }
                throw e;
            }
        } finally {
            Libc.close(fd);   // the mappings hold the file
        }
    }

    /**
     * What the kernel says of each page of {@code [start, start + size)} (/proc/self/pagemap, whose flag
     * bits need no privilege; per page, so it does not matter how the kernel merged the mappings around
     * it): bytes of the file's pages mapped here, of those the ones mapped elsewhere too (other clones),
     * and this RAM's own pages (anonymous and mapped only here: its copies of the file's pages and the
     * zero pages it wrote, resident or swapped).
     */
    record Usage(long filePages, long shared, long own) {

        private static final long PRESENT = 1L << 63;
        private static final long SWAPPED = 1L << 62;
        private static final long FILE_OR_SHARED_ANON = 1L << 61;
        private static final long EXCLUSIVE = 1L << 56;
        private static final int BATCH = 4096;

        static Usage of(long start, long size) {
            long file = 0;
            long shared = 0;
            long own = 0;
            ByteBuffer entries = ByteBuffer.allocate(BATCH * 8).order(ByteOrder.nativeOrder());
            try (FileChannel pagemap = FileChannel.open(Path.of("/proc/self/pagemap"), StandardOpenOption.READ)) {
                long pages = size / PAGE;
                for (long done = 0; done < pages; ) {
                    entries.clear().limit((int) Math.min(BATCH, pages - done) * 8);
                    long at = (start / PAGE + done) * 8;
                    while (entries.hasRemaining()) {
                        if (pagemap.read(entries, at + entries.position()) <= 0) {
                            throw new IOException("/proc/self/pagemap ended at 0x" + Long.toHexString(at + entries.position()));
                        }
                    }
                    entries.flip();
                    while (entries.hasRemaining()) {
                        long e = entries.getLong();
                        if ((e & PRESENT) != 0 && (e & FILE_OR_SHARED_ANON) != 0) {
                            file += PAGE;
                            shared += (e & EXCLUSIVE) == 0 ? PAGE : 0;
                        } else if ((e & SWAPPED) != 0 || (e & PRESENT) != 0 && (e & EXCLUSIVE) != 0) {
                            own += PAGE;   // not the shared zero page, which is present but neither file nor exclusive
                        }
                        done++;
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException("reading /proc/self/pagemap", e);
            }
            return new Usage(file, shared, own);
        }
    }
}
