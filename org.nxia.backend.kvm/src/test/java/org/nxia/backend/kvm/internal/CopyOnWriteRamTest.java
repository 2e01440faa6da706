package org.nxia.backend.kvm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.spi.RamFile;

/**
 * Guest RAM mapped copy-on-write from a file, no /dev/kvm needed: two "clones" of one file see its
 * pages, a write stays in the clone that made it and never reaches the file, the pages are shared
 * until written (the kernel's word for it, from smaps), and a hostile extent maps nothing.
 */
class CopyOnWriteRamTest {

    private static final int PAGE = 4096;
    private static final long RAM = 16 * PAGE;

    @TempDir
    Path dir;

    /** A file of one header page, then pages filled with 'A', 'B', 'C', 'D'. */
    private Path file() throws Exception {
        byte[] bytes = new byte[5 * PAGE];
        Arrays.fill(bytes, 0, PAGE, (byte) 'h');
        for (int i = 0; i < 4; i++) {
            Arrays.fill(bytes, (i + 1) * PAGE, (i + 2) * PAGE, (byte) ('A' + i));
        }
        return Files.write(dir.resolve("ram.nxsnap"), bytes);
    }

    /** A, B at guest pages 0-1; C, D at guest pages 8-9; the rest zero. */
    private static RamFile ramFile(Path file) {
        return new RamFile(file, RAM, List.of(new RamFile.Extent(0, PAGE, 2 * PAGE), new RamFile.Extent(8 * PAGE, 3 * PAGE, 2 * PAGE)));
    }

    /** RAM as a VM's would be before: mapped, written all over. */
    private static MemorySegment junkRam(long size) {
        MemorySegment ram = Libc.mmap(size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, "test RAM");
        ram.fill((byte) 0x5a);
        return ram;
    }

    private static byte page(MemorySegment ram, int page) {
        byte first = ram.get(ValueLayout.JAVA_BYTE, (long) page * PAGE);
        for (int i = 1; i < PAGE; i++) {
            assertEquals(first, ram.get(ValueLayout.JAVA_BYTE, (long) page * PAGE + i), "page " + page + " is one byte repeated");
        }
        return first;
    }

    private static String sha256(Path file) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }

    @Test
    void twoClonesShareTheFilesPagesUntilOneWritesAndNoWriteReachesTheFile() throws Exception {
        Path file = file();
        String before = sha256(file);
        MemorySegment one = junkRam(RAM);
        MemorySegment two = junkRam(RAM);
        try {
            assertEquals(0, CopyOnWriteRam.map(one, ramFile(file)));
            assertEquals(0, CopyOnWriteRam.map(two, ramFile(file)));
            for (MemorySegment ram : List.of(one, two)) {
                assertArrayEquals(new byte[] {'A', 'B', 'C', 'D'}, new byte[] {page(ram, 0), page(ram, 1), page(ram, 8), page(ram, 9)},
                        "the file's pages where it stores them");
            }
            one.set(ValueLayout.JAVA_BYTE, 5, (byte) 'x');   // a stored page
            assertEquals('A', two.get(ValueLayout.JAVA_BYTE, 5), "the other clone does not see the write");
            assertEquals('x', one.get(ValueLayout.JAVA_BYTE, 5));

            CopyOnWriteRam.Usage u1 = CopyOnWriteRam.Usage.of(one.address(), RAM);
            CopyOnWriteRam.Usage u2 = CopyOnWriteRam.Usage.of(two.address(), RAM);
            System.out.println("clone one: " + u1 + "; clone two: " + u2 + " (bytes; the file's 4 pages read by both, one copied by one)");
            assertEquals(PAGE, u1.own(), "clone one owns its copy of page A, and nothing else");
            assertEquals(0, u2.own(), "clone two owns nothing: it wrote nothing");
            assertEquals(4 * PAGE, u2.filePages(), "clone two maps the file's 4 pages");
            assertEquals(3 * PAGE, u1.filePages(), "clone one maps B, C and D; A is its own copy");
            assertEquals(3 * PAGE, u2.shared(), "B, C and D are mapped by both clones; the file's A only by two");
            assertEquals(3 * PAGE, u1.shared());

            for (MemorySegment ram : List.of(one, two)) {
                for (int p : new int[] {2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15}) {
                    assertEquals(0, page(ram, p), "page " + p + " is zero, nothing of the RAM before");
                }
            }
            one.set(ValueLayout.JAVA_BYTE, 4 * PAGE, (byte) 'y');   // a zero page
            assertEquals(0, two.get(ValueLayout.JAVA_BYTE, 4 * PAGE));
            // at least its copy of A and the zero page it wrote; exactly those where the host maps the shared zero page
            // on a read (a host booted with pvm_no_zero_page allocates the zero pages read above too)
            assertTrue(CopyOnWriteRam.Usage.of(one.address(), RAM).own() >= 2 * PAGE);
            assertEquals(before, sha256(file), "the file is unchanged");
        } finally {
            Libc.munmap(one);
            Libc.munmap(two);
        }
    }

    @Test
    void anExtentPastTheFilesEndIsRefusedBeforeAnythingIsMapped() throws Exception {
        Path file = file();
        MemorySegment ram = junkRam(RAM);
        try {
            RamFile past = new RamFile(file, RAM, List.of(new RamFile.Extent(0, PAGE, PAGE), new RamFile.Extent(4 * PAGE, 4 * PAGE, 2 * PAGE)));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CopyOnWriteRam.map(ram, past));
            assertTrue(e.getMessage().contains("past its 20480 bytes"), e.getMessage());
            assertEquals(0x5a, page(ram, 0), "nothing was mapped");
            RamFile bigger = new RamFile(file, 2 * RAM, List.of());
            assertThrows(IllegalArgumentException.class, () -> CopyOnWriteRam.map(ram, bigger), "RAM of another size");
        } finally {
            Libc.munmap(ram);
        }
    }

    @Test
    void extentsPastTheMappingBoundAreCopiedNotMapped() throws Exception {
        int extents = CopyOnWriteRam.MAX_MAPPED_EXTENTS + 6;
        byte[] bytes = new byte[extents * PAGE];
        List<RamFile.Extent> list = new ArrayList<>();
        for (int i = 0; i < extents; i++) {
            Arrays.fill(bytes, i * PAGE, (i + 1) * PAGE, (byte) (i * 7 + 1));
            list.add(new RamFile.Extent(2L * i * PAGE, (long) i * PAGE, PAGE));   // every other guest page: no two extents touch
        }
        Path file = Files.write(dir.resolve("many.nxsnap"), bytes);
        long ramBytes = 2L * extents * PAGE;
        MemorySegment ram = junkRam(ramBytes);
        try {
            assertEquals(6L * PAGE, CopyOnWriteRam.map(ram, new RamFile(file, ramBytes, list)));
            for (int i = 0; i < extents; i++) {
                assertEquals((byte) (i * 7 + 1), page(ram, 2 * i), "extent " + i);
                assertEquals(0, page(ram, 2 * i + 1));
            }
        } finally {
            Libc.munmap(ram);
        }
    }
}
