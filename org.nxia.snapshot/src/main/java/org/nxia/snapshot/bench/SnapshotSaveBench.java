package org.nxia.snapshot.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import javax.crypto.SecretKey;

import org.nxia.snapshot.api.RamPages;
import org.nxia.snapshot.api.RamRange;
import org.nxia.snapshot.api.Requirements;
import org.nxia.snapshot.api.SaveProgress;
import org.nxia.snapshot.api.SnapshotKeys;
import org.nxia.snapshot.api.SnapshotWriter;

/**
 * Snapshot save throughput against a plain sequential write of the same bytes (issue 15's
 * "save of a 256 MiB System VM, full and after 1 MiB of writes, ≥ 0.7× a host sequential
 * write"). Both write into {@code dir} and sync (fsync) before the clock stops.
 */
public final class SnapshotSaveBench {

    private SnapshotSaveBench() {
    }

    /**
     * One measurement.
     *
     * @param case_ what was saved: {@code full}, {@code touched}, each plain or encrypted
     * @param storedBytes guest bytes stored
     * @param fileBytes the snapshot file's size
     * @param saveMibPerSecond RAM bytes stored per second of the save, in MiB/s
     * @param plainMibPerSecond the same bytes by a plain {@code FileChannel} write and fsync, in MiB/s
     */
    public record Figure(String case_, long storedBytes, long fileBytes, double saveMibPerSecond, double plainMibPerSecond) {

        /** save / plain: the goal is ≥ 0.7. */
        public double ratio() {
            return saveMibPerSecond / plainMibPerSecond;
        }

        @Override
        public String toString() {
            return String.format("%-18s stored %6.1f MiB  file %6.1f MiB  save %7.0f MiB/s  plain write %7.0f MiB/s  ratio %.2f",
                case_, storedBytes / 1048576.0, fileBytes / 1048576.0, saveMibPerSecond, plainMibPerSecond, ratio());
        }
    }

    /**
     * Saves {@code ramBytes} of RAM filled with random bytes, then the same RAM with only
     * {@code touchedBytes} non-zero (spread over it in 64 KiB pieces), plain and encrypted, each
     * against a plain write of the bytes stored. Best of {@code rounds}.
     */
    public static List<Figure> run(Path dir, long ramBytes, long touchedBytes, int rounds) throws IOException {
        List<Figure> figures = new ArrayList<>();
        Requirements requirements = new Requirements("x86_64", "bench", new byte[16], new byte[0]);
        SecretKey key = SnapshotKeys.generate();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = arena.allocate(ramBytes, 4096);
            SplittableRandom random = new SplittableRandom(1);
            for (long at = 0; at < ramBytes; at += 8) {
                ram.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, at, random.nextLong() | 1);
            }
            figures.add(measure("full", dir, ram, RamPages.all(), requirements, null, rounds));
            figures.add(measure("full encrypted", dir, ram, RamPages.all(), requirements, key, rounds));
            ram.fill((byte) 0);
            long piece = 64 << 10;
            long stride = Math.max(piece, ramBytes / Math.max(1, touchedBytes / piece)) & -4096L;
            List<RamRange> dirty = new ArrayList<>();
            for (long at = 0, left = touchedBytes; left > 0 && at + piece <= ramBytes; at += stride, left -= piece) {
                ram.asSlice(at, piece).fill((byte) 0x5a);
                dirty.add(new RamRange(at, piece));
            }
            // as after a dirty log: the writer is given the written ranges, not all of RAM
            figures.add(measure("touched", dir, ram, RamPages.ranges(dirty), requirements, null, rounds));
            figures.add(measure("touched encrypted", dir, ram, RamPages.ranges(dirty), requirements, key, rounds));
        }
        return figures;
    }

    private static Figure measure(String name, Path dir, MemorySegment ram, RamPages pages, Requirements requirements, SecretKey key,
        int rounds) throws IOException {
        long best = Long.MAX_VALUE;
        long stored = 0;
        long fileBytes = 0;
        for (int r = -1; r < rounds; r++) {   // round -1 warms the JIT (SHA-256 and AES-GCM intrinsics)
            Path file = dir.resolve("bench-" + r + ".nxsnap");
            Files.deleteIfExists(file);
            long start = System.nanoTime();
            try (SnapshotWriter w = key == null ? SnapshotWriter.create(file, requirements)
                : SnapshotWriter.createEncrypted(file, requirements, key)) {
                w.section("vm.spec", new byte[256]);
                w.ram(ram, pages, SaveProgress.NONE);
                var info = w.finish();
                stored = info.ramStoredBytes();
            }
            if (r >= 0) {
                best = Math.min(best, System.nanoTime() - start);
            }
            fileBytes = Files.size(file);
            Files.delete(file);
        }
        long plainBest = Long.MAX_VALUE;
        for (int r = 0; r < rounds; r++) {
            Path file = dir.resolve("bench-plain-" + r);
            long start = System.nanoTime();
            try (FileChannel c = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ByteBuffer bytes = ram.asSlice(0, stored).asByteBuffer();
                long position = 0;
                while (bytes.hasRemaining()) {
                    position += c.write(bytes, position);
                }
                c.force(true);
            }
            plainBest = Math.min(plainBest, System.nanoTime() - start);
            Files.delete(file);
        }
        return new Figure(name, stored, fileBytes, mibPerSecond(stored, best), mibPerSecond(stored, plainBest));
    }

    private static double mibPerSecond(long bytes, long nanos) {
        return bytes / 1048576.0 / (nanos / 1e9);
    }
}
