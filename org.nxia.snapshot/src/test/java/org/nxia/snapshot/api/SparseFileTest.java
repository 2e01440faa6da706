package org.nxia.snapshot.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.snapshot.internal.Format;

/** {@link RamPages#sparseFile}: guest RAM in a memfd, its untouched pages holes that are never read. */
class SparseFileTest {

    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle MEMFD_CREATE = LINKER.downcallHandle(LINKER.defaultLookup().find("memfd_create").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle FTRUNCATE = LINKER.downcallHandle(LINKER.defaultLookup().find("ftruncate").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
    private static final MethodHandle CLOSE = LINKER.downcallHandle(LINKER.defaultLookup().find("close").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    @TempDir
    Path dir;

    @Test
    void onlyTheMemfdsDataPagesAreConsideredAndZeroDataPagesAreSkipped() throws Throwable {
        long size = 256L << 20;
        try (Arena arena = Arena.ofShared()) {
            int fd = (int) MEMFD_CREATE.invokeExact(arena.allocateFrom("nxia-snapshot-test"), 0);
            assertTrue(fd >= 0, "memfd_create");
            try {
                assertEquals(0, (int) FTRUNCATE.invokeExact(fd, size));
                MemorySegment ram;
                try (FileChannel channel = FileChannel.open(Path.of("/proc/self/fd/" + fd), StandardOpenOption.READ,
                    StandardOpenOption.WRITE)) {
                    ram = channel.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
                }
                SnapshotFileTest.touch(ram, new Random(7), 3, 4, 60000);
                ram.set(ValueLayout.JAVA_BYTE, 1000L * Format.PAGE, (byte) 0);   // a data page that is all zero
                Path file = dir.resolve("memfd.nxsnap");
                try (SnapshotWriter w = SnapshotWriter.create(file, SnapshotFileTest.REQUIREMENTS)) {
                    w.ram(ram, RamPages.sparseFile(fd), SaveProgress.NONE);
                    w.finish();
                }
                assertTrue(Files.size(file) < 5 * Format.PAGE + 4096, "size " + Files.size(file));
                // a copy of RAM, unlike the memfd, has a non-zero page where the memfd has a hole: the probe
                // follows the memfd, so that page is not stored (RAM must be the memfd's mapping)
                // (copied page by page: reading a hole through the shared mapping would allocate it in the memfd)
                MemorySegment copy = arena.allocate(size, Format.PAGE);
                for (long page : new long[] {3, 4, 1000, 60000}) {
                    copy.asSlice(page * Format.PAGE, Format.PAGE).copyFrom(ram.asSlice(page * Format.PAGE, Format.PAGE));
                }
                copy.set(ValueLayout.JAVA_BYTE, 5000L * Format.PAGE, (byte) 1);
                Path other = dir.resolve("copy.nxsnap");
                try (SnapshotWriter w = SnapshotWriter.create(other, SnapshotFileTest.REQUIREMENTS)) {
                    w.ram(copy, RamPages.sparseFile(fd), SaveProgress.NONE);
                    w.finish();
                }
                for (Path f : List.of(file, other)) {
                    try (SnapshotReader r = SnapshotReader.open(f)) {
                        assertEquals(List.of(new RamRange(3L * Format.PAGE, 2L * Format.PAGE), new RamRange(60000L * Format.PAGE, Format.PAGE)),
                            r.ramRanges(), f.toString());
                        MemorySegment restored = arena.allocate(size, Format.PAGE);
                        r.copyRamInto(restored);
                        assertEquals(-1, restored.mismatch(ram));
                    }
                }
            } finally {
                int closed = (int) CLOSE.invokeExact(fd);
                assertEquals(0, closed);
            }
        }
    }
}
