package org.nxia.snapshot.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import javax.crypto.SecretKey;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.snapshot.internal.Format;
import org.nxia.snapshot.internal.RamView;
import org.nxia.snapshot.internal.RunBuilder;

/** RAM given to the writer in pieces where they are held, not laid out whole first. */
class RamPiecesTest {

    static final long PAGE = Format.PAGE;

    @TempDir
    Path dir;

    /** Pieces of RAM: adjacent ones, one with zero pages inside, and holes; the RAM they make laid out whole. */
    private record Case(List<RamPiece> pieces, MemorySegment whole) {
    }

    private static Case pieces(Arena arena, long size) {
        Random random = new Random(7);
        MemorySegment whole = arena.allocate(size, PAGE);
        long[][] at = {{0, 3}, {3, 2}, {40, 4}, {100, 1}, {(size / PAGE) - 2, 2}};   // {first page, pages}
        List<RamPiece> pieces = new java.util.ArrayList<>();
        for (long[] p : at) {
            MemorySegment bytes = arena.allocate(p[1] * PAGE, PAGE);
            for (long page = 0; page < p[1]; page++) {
                if (p[0] == 40 && page == 1) {
                    continue;   // a zero page inside a piece is not stored
                }
                byte[] b = new byte[(int) PAGE];
                random.nextBytes(b);
                b[0] |= 1;
                MemorySegment.copy(MemorySegment.ofArray(b), 0, bytes, page * PAGE, PAGE);
            }
            whole.asSlice(p[0] * PAGE, bytes.byteSize()).copyFrom(bytes);
            pieces.add(new RamPiece(p[0] * PAGE, bytes));
        }
        return new Case(pieces, whole);
    }

    @Test
    void piecesAreStoredAsTheRamTheyMakeWouldBePlainAndEncrypted() throws Exception {
        long size = 4 << 20;
        for (SecretKey key : new SecretKey[] {null, SnapshotKeys.generate()}) {
            try (Arena arena = Arena.ofConfined()) {
                Case c = pieces(arena, size);
                Path fromPieces = dir.resolve("pieces-" + (key != null));
                Path fromWhole = dir.resolve("whole-" + (key != null));
                try (SnapshotWriter w = key == null ? SnapshotWriter.create(fromPieces, SnapshotFileTest.REQUIREMENTS)
                        : SnapshotWriter.createEncrypted(fromPieces, SnapshotFileTest.REQUIREMENTS, key)) {
                    w.ram(size, c.pieces(), SaveProgress.NONE);
                    w.finish();
                }
                try (SnapshotWriter w = key == null ? SnapshotWriter.create(fromWhole, SnapshotFileTest.REQUIREMENTS)
                        : SnapshotWriter.createEncrypted(fromWhole, SnapshotFileTest.REQUIREMENTS, key)) {
                    w.ram(c.whole(), RamPages.all(), SaveProgress.NONE);
                    w.finish();
                }
                try (SnapshotReader a = key == null ? SnapshotReader.open(fromPieces) : SnapshotReader.open(fromPieces, key);
                     SnapshotReader b = key == null ? SnapshotReader.open(fromWhole) : SnapshotReader.open(fromWhole, key)) {
                    assertEquals(b.ramRanges(), a.ramRanges(), "the same runs as the RAM laid out whole");
                    assertEquals(List.of(new RamRange(0, 5 * PAGE), new RamRange(40 * PAGE, PAGE), new RamRange(42 * PAGE, 2 * PAGE),
                            new RamRange(100 * PAGE, PAGE), new RamRange(size - 2 * PAGE, 2 * PAGE)), a.ramRanges());
                    MemorySegment restored = arena.allocate(size, PAGE);
                    a.copyRamInto(restored);
                    assertEquals(-1, c.whole().mismatch(restored));
                    a.verify();
                }
                assertEquals(Files.size(fromWhole), Files.size(fromPieces));
            }
        }
    }

    @Test
    void piecesOutOfOrderOverlappingUnalignedOrOutsideRamAreRefused() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment two = arena.allocate(2 * PAGE, PAGE);
            List<List<RamPiece>> bad = List.of(
                    List.of(new RamPiece(4 * PAGE, two), new RamPiece(0, two)),          // out of order
                    List.of(new RamPiece(0, two), new RamPiece(PAGE, two)),              // overlapping
                    List.of(new RamPiece(15 * PAGE, two)));                              // past the end of 16 pages
            for (List<RamPiece> pieces : bad) {
                Path file = dir.resolve("bad");
                try (SnapshotWriter w = SnapshotWriter.create(file, SnapshotFileTest.REQUIREMENTS)) {
                    assertThrows(IllegalArgumentException.class, () -> w.ram(16 * PAGE, pieces, SaveProgress.NONE), pieces.toString());
                }
                assertTrue(Files.notExists(file), "an abandoned writer leaves no file");
            }
            assertThrows(IllegalArgumentException.class, () -> new RamPiece(100, two));
            assertThrows(IllegalArgumentException.class, () -> new RamPiece(0, arena.allocate(100)));
        }
    }

    /** A run the run list joins across a hole reads zeros there, up to the next piece and no further. */
    @Test
    void holesReadAsZerosUpToTheNextPiece() {
        MemorySegment a = MemorySegment.ofArray(new byte[(int) (2 * PAGE)]).fill((byte) 1);
        MemorySegment b = MemorySegment.ofArray(new byte[(int) PAGE]).fill((byte) 2);
        RamView view = new RamView(64 * PAGE, new long[] {0, 10 * PAGE}, new MemorySegment[] {a, b});
        MemorySegment first = view.slice(PAGE, 100 * PAGE);
        assertEquals(PAGE, first.byteSize(), "to the end of the first piece");
        assertEquals(1, first.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0));
        MemorySegment hole = view.slice(2 * PAGE, 100 * PAGE);
        assertEquals(8 * PAGE, hole.byteSize(), "zeros up to the next piece");
        assertEquals(-1, hole.mismatch(MemorySegment.ofArray(new byte[(int) (8 * PAGE)])));
        assertEquals(2, view.slice(10 * PAGE, 1).get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0));
        assertEquals(53 * PAGE, view.slice(11 * PAGE, 1000 * PAGE).byteSize(), "zeros to the end of RAM");
        assertThrows(IndexOutOfBoundsException.class, () -> view.slice(64 * PAGE, 1));
        RunBuilder runs = new RunBuilder(1);
        view.scan(runs);
        org.nxia.snapshot.internal.LongList joined = runs.finish();
        assertEquals(List.of(0L, 11 * PAGE), List.of(joined.get(0), joined.get(1)), "joined across the hole");
    }
}
