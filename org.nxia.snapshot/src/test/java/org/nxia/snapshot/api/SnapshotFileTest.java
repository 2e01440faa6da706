package org.nxia.snapshot.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import javax.crypto.SecretKey;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.snapshot.internal.Format;
import org.nxia.snapshot.internal.LongList;
import org.nxia.snapshot.internal.RunBuilder;

class SnapshotFileTest {

    static final Requirements REQUIREMENTS = new Requirements("x86_64", "kvm", new byte[] {1, 2, 3, 4}, new byte[] {9, 8});
    static final long MIB = 1 << 20;

    @TempDir
    Path dir;

    /** Touches {@code pages} (page indexes) with random bytes; returns them as ranges. */
    static void touch(MemorySegment ram, Random random, long... pages) {
        for (long p : pages) {
            byte[] bytes = new byte[Format.PAGE];
            random.nextBytes(bytes);
            bytes[0] |= 1;
            MemorySegment.copy(MemorySegment.ofArray(bytes), 0, ram, p * Format.PAGE, Format.PAGE);
        }
    }

    @Test
    void sectionsAndSparseRamRoundTripAndTheFileHoldsOnlyTouchedPages() throws Exception {
        Path file = dir.resolve("vm.nxsnap");
        Random random = new Random(1);
        byte[] spec = new byte[300];
        random.nextBytes(spec);
        byte[] vcpu = new byte[5000];
        random.nextBytes(vcpu);
        List<Long> progress = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = arena.allocate(64 * MIB, Format.PAGE);
            touch(ram, random, 0, 1, 2, 100, 4095, 16383);
            SnapshotInfo written;
            try (SnapshotWriter w = SnapshotWriter.create(file, REQUIREMENTS)) {
                w.section("vm.spec", spec);
                w.section("vcpu.0", vcpu);
                w.section("empty", new byte[0]);
                w.ram(ram, RamPages.all(), (done, total) -> progress.add(done));
                w.section("device.3.virtio-vsock", new byte[] {7});
                written = w.finish();
            }
            long size = Files.size(file);
            assertTrue(size < 6 * Format.PAGE + 4 * Format.PAGE + 4096, "64 MiB with 6 touched pages gave a file of " + size + " bytes");
            assertEquals(0L, progress.getFirst());
            assertEquals(6L * Format.PAGE, progress.getLast());
            for (int i = 1; i < progress.size(); i++) {
                assertTrue(progress.get(i) > progress.get(i - 1), "progress grows: " + progress);
            }
            assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
            try (SnapshotReader r = SnapshotReader.open(file)) {
                assertEquals(written, r.info());
                assertEquals(REQUIREMENTS, r.requirements());
                assertEquals(List.of("vm.spec", "vcpu.0", "empty", "device.3.virtio-vsock"), r.sectionNames());
                assertArrayEquals(spec, r.section("vm.spec"));
                assertArrayEquals(vcpu, r.section("vcpu.0"));
                assertArrayEquals(new byte[0], r.section("empty"));
                assertArrayEquals(new byte[] {7}, r.section("device.3.virtio-vsock"));
                assertThrows(SnapshotFormatException.class, () -> r.section("vcpu.1"));
                assertEquals(64 * MIB, r.ramSize());
                assertEquals(List.of(new RamRange(0, 3 * Format.PAGE), new RamRange(100 * Format.PAGE, Format.PAGE),
                    new RamRange(4095L * Format.PAGE, Format.PAGE), new RamRange(16383L * Format.PAGE, Format.PAGE)), r.ramRanges());
                MemorySegment restored = arena.allocate(64 * MIB, Format.PAGE);
                r.copyRamInto(restored);
                assertEquals(-1, ram.mismatch(restored));
                byte[] bytes = Files.readAllBytes(file);
                for (RamExtent x : r.ramExtents()) {
                    assertEquals(0, x.fileOffset() % Format.PAGE, "mappable: " + x);
                    assertEquals(-1, MemorySegment.ofArray(bytes).asSlice(x.fileOffset(), x.length())
                        .mismatch(ram.asSlice(x.guestOffset(), x.length())), "file pages of " + x);
                }
                assertEquals(written, r.verify());
            }
        }
    }

    @Test
    void onlyTheGivenRangesAreStoredAndZeroPagesInThemAreSkipped() throws Exception {
        Path file = dir.resolve("r.nxsnap");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = arena.allocate(MIB, Format.PAGE);
            touch(ram, new Random(2), 1, 2, 10, 200);
            try (SnapshotWriter w = SnapshotWriter.create(file, REQUIREMENTS)) {
                w.ram(ram, RamPages.ranges(List.of(new RamRange(10 * Format.PAGE, 4 * Format.PAGE), new RamRange(0, 3 * Format.PAGE))),
                    SaveProgress.NONE);
                w.finish();
            }
            try (SnapshotReader r = SnapshotReader.open(file)) {
                assertEquals(List.of(new RamRange(Format.PAGE, 2 * Format.PAGE), new RamRange(10 * Format.PAGE, Format.PAGE)), r.ramRanges());
            }
            assertThrows(IllegalArgumentException.class, () -> {
                try (SnapshotWriter w = SnapshotWriter.create(dir.resolve("x"), REQUIREMENTS)) {
                    w.ram(ram, RamPages.ranges(List.of(new RamRange(MIB, Format.PAGE))), SaveProgress.NONE);
                }
            });
            assertFalse(Files.exists(dir.resolve("x")));
            try (var files = Files.list(dir)) {
                assertEquals(List.of(file), files.toList(), "an abandoned writer leaves no partial file");
            }
        }
    }

    @Test
    void allZeroRamStoresNoPagesPlainOrEncrypted() throws Exception {
        for (SecretKey key : new SecretKey[] {null, SnapshotKeys.generate()}) {
            Path file = dir.resolve("zero-" + (key != null));
            try (Arena arena = Arena.ofConfined();
                SnapshotWriter w = key == null ? SnapshotWriter.create(file, REQUIREMENTS)
                    : SnapshotWriter.createEncrypted(file, REQUIREMENTS, key)) {
                w.ram(arena.allocate(4 * MIB, Format.PAGE), RamPages.all(), SaveProgress.NONE);
                assertEquals(0, w.finish().ramStoredBytes());
            }
            try (SnapshotReader r = SnapshotReader.open(file, key)) {
                assertEquals(4 * MIB, r.ramSize());
                assertEquals(List.of(), r.ramRanges());
                byte[] target = new byte[(int) (4 * MIB)];
                Arrays.fill(target, (byte) 3);
                r.copyRamInto(MemorySegment.ofArray(target));
                byte[] threes = new byte[target.length];
                Arrays.fill(threes, (byte) 3);
                assertArrayEquals(threes, target, "nothing written");
            }
        }
    }

    @Test
    void aProgressCallbackThatThrowsAbortsTheSaveAndLeavesNoFile() throws Exception {
        Path file = dir.resolve("aborted.nxsnap");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = arena.allocate(32 * MIB, Format.PAGE);
            ram.fill((byte) 1);
            assertThrows(IllegalStateException.class, () -> {
                try (SnapshotWriter w = SnapshotWriter.create(file, REQUIREMENTS)) {
                    w.ram(ram, RamPages.all(), (done, total) -> {
                        if (done > 0) {
                            throw new IllegalStateException("cancelled");
                        }
                    });
                    w.finish();
                }
            });
        }
        try (var files = Files.list(dir)) {
            assertEquals(List.of(), files.toList());
        }
    }

    @Test
    void theWriterRefusesBadNamesDuplicatesOversizedSectionsAndAnExistingFile() throws Exception {
        Path file = dir.resolve("w.nxsnap");
        try (SnapshotWriter w = SnapshotWriter.create(file, REQUIREMENTS)) {
            for (String bad : new String[] {"", "Upper", ".dot", "ram", "ram.map", "a b", "x".repeat(33)}) {
                assertThrows(IllegalArgumentException.class, () -> w.section(bad, new byte[1]), bad);
            }
            w.section("a", new byte[1]);
            assertThrows(IllegalArgumentException.class, () -> w.section("a", new byte[1]));
            assertThrows(IllegalArgumentException.class, () -> w.section("big", new byte[(int) Format.MAX_SECTION + 1]));
            w.finish();
            assertThrows(IllegalStateException.class, () -> w.section("late", new byte[1]));
        }
        assertThrows(java.nio.file.FileAlreadyExistsException.class, () -> SnapshotWriter.create(file, REQUIREMENTS));
    }

    @Test
    void theSectionCountIsBoundedWithRoomKeptForRam() throws Exception {
        Path file = dir.resolve("many.nxsnap");
        try (SnapshotWriter w = SnapshotWriter.create(file, REQUIREMENTS)) {
            for (int i = 0; i < Format.MAX_SECTIONS - 2; i++) {
                w.section("s" + i, new byte[0]);
            }
            assertThrows(IllegalArgumentException.class, () -> w.section("one.more", new byte[0]));
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment ram = arena.allocate(Format.PAGE);
                ram.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 5, (byte) 1);
                w.ram(ram, RamPages.all(), SaveProgress.NONE);
            }
            w.finish();
        }
        try (SnapshotReader r = SnapshotReader.open(file)) {
            assertEquals(Format.MAX_SECTIONS, r.info().sections().size());
            assertEquals(Format.MAX_SECTIONS - 2, r.sectionNames().size());
        }
    }

    @Test
    void tooManyRunsAreJoinedAcrossTheSmallestGapsUntilTheMapFits() {
        RunBuilder builder = new RunBuilder(3);
        for (long p : new long[] {0, 2, 3, 5, 9, 10, 20, 40, 41, 100}) {
            builder.add(p * Format.PAGE);
        }
        LongList runs = builder.finish();
        List<Long> joined = new ArrayList<>();
        for (int i = 0; i < runs.size(); i++) {
            joined.add(runs.get(i) / Format.PAGE);
        }
        // at 6 runs: joined across gaps of 1, 2 then 4 pages (3 runs), 41 joins as it comes, 100 makes 4; at the end
        // joined across 8 then 16
        assertEquals(List.of(0L, 21L, 40L, 42L, 100L, 101L), joined);
    }

    @Test
    void theRunListStaysBoundedWhateverTheGuestWrote() {
        RunBuilder builder = new RunBuilder(4);
        for (long p = 0; p < 100_000; p += 2) {   // every other page non-zero: the most runs a guest can make
            builder.add(p * Format.PAGE);
        }
        LongList runs = builder.finish();
        assertTrue(builder.peakRuns() <= 8, "peak " + builder.peakRuns());
        assertTrue(runs.size() / 2 <= 4, "runs " + runs.size() / 2);
        assertEquals(0, runs.get(0));
        assertEquals(99_999L * Format.PAGE, runs.get(runs.size() - 1), "every page is still covered");
        for (int i = 2; i < runs.size(); i += 2) {
            assertTrue(runs.get(i) > runs.get(i - 1), "ascending, disjoint");
        }
    }

    /** A small snapshot with RAM, as bytes. */
    byte[] small(SecretKey key, int chunk) throws IOException {
        return small(key, chunk, 64 << 10, 2, 3, 9);
    }

    byte[] small(SecretKey key, int chunk, long ramSize, long... pages) throws IOException {
        Path file = dir.resolve("small-" + System.nanoTime());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = arena.allocate(ramSize, Format.PAGE);
            touch(ram, new Random(3), pages);
            try (SnapshotWriter w = key == null ? SnapshotWriter.create(file, REQUIREMENTS)
                : SnapshotWriter.createEncrypted(file, REQUIREMENTS, key, chunk)) {
                w.section("vm.spec", "spec".getBytes());
                byte[] vcpu = new byte[700];
                new Random(4).nextBytes(vcpu);
                w.section("vcpu.0", vcpu);
                w.ram(ram, RamPages.all(), SaveProgress.NONE);
                w.section("device.1.uart", new byte[] {1, 2, 3});
                w.finish();
            }
        }
        byte[] bytes = Files.readAllBytes(file);
        Files.delete(file);
        return bytes;
    }

    static String refusal(byte[] file, SecretKey key) {
        SnapshotFormatException e = assertThrows(SnapshotFormatException.class, () -> readAll(file, key));
        return e.getMessage();
    }

    /** Opens and reads everything, RAM into a guarded target. */
    static void readAll(byte[] file, SecretKey key) throws SnapshotFormatException, IOException {
        try (SnapshotReader r = SnapshotReader.open(file, key)) {
            for (String name : r.sectionNames()) {
                r.section(name);
            }
            if (r.hasRam()) {
                r.copyRamInto(MemorySegment.ofArray(new byte[(int) Math.min(r.ramSize(), 1 << 20)]));
            }
        }
    }

    @Test
    void everySingleBitFlipAnywhereInThePlainFileIsRefused() throws Exception {
        byte[] file = small(null, 0);
        readAll(file, null);
        for (int i = 0; i < file.length; i++) {
            for (int bit : new int[] {0, 7}) {
                byte[] bad = file.clone();
                bad[i] ^= (byte) (1 << bit);
                refusal(bad, null);
            }
        }
    }

    @Test
    void everyTruncationAndExtensionIsRefused() throws Exception {
        for (SecretKey key : new SecretKey[] {null, SnapshotKeys.generate()}) {
            byte[] file = small(key, 256);
            for (int cut = 0; cut < file.length; cut++) {
                refusal(Arrays.copyOf(file, cut), key);
            }
            refusal(Arrays.copyOf(file, file.length + 1), key);
            refusal(Arrays.copyOf(file, file.length + 4096), key);
        }
    }

    @Test
    void headerFieldsOutOfRangeAreRefusedEvenWhenResealed() throws Exception {
        byte[] file = small(null, 0);
        record Case(int offset, int size, long value, String says) {
        }
        for (Case c : List.of(new Case(Format.H_MAJOR, 2, 2, "format version 2.0"), new Case(Format.H_FLAGS, 4, 2, "unknown flags"),
            new Case(Format.H_HEADER_LENGTH, 4, 60, "header length"), new Case(Format.H_HEADER_LENGTH, 4, 1 << 20, "header length"),
            new Case(Format.H_SECTION_COUNT, 4, 5000, "5000 sections"), new Case(Format.H_SECTION_COUNT, 4, -1, "4294967295 sections"),
            new Case(Format.H_TABLE_OFFSET, 8, 8, "section table"), new Case(Format.H_FILE_LENGTH, 8, Long.MAX_VALUE, "truncated or extended"),
            new Case(Format.H_CHUNK_SIZE, 4, 4096, "chunk size"), new Case(Format.H_RESERVED, 4, 1, "reserved"),
            new Case(Format.H_SALT, 1, 1, "salt"), new Case(Format.FIXED_HEADER, 2, 0, "requirement field 1"), new Case(Format.FIXED_HEADER + 2, 1, 0x20, "bad requirements"))) {
            byte[] bad = file.clone();
            var b = Forge.le(bad);
            switch (c.size()) {
                case 1 -> b.put(c.offset(), (byte) c.value());
                case 2 -> b.putShort(c.offset(), (short) c.value());
                case 4 -> b.putInt(c.offset(), (int) c.value());
                default -> b.putLong(c.offset(), c.value());
            }
            String why = refusal(Forge.reseal(bad, null), null);
            assertTrue(why.contains(c.says()), c + ": " + why);
        }
    }

    @Test
    void sectionTableEntriesThatOverlapLieOutsideOrLieAboutTheirLengthAreRefused() throws Exception {
        byte[] file = small(null, 0);
        long vcpu = Forge.offset(file, "vcpu.0");
        record Case(String section, int field, long value, String says) {
        }
        for (Case c : List.of(new Case("vcpu.0", Format.E_OFFSET, vcpu - 1, "overlapping"),
            new Case("vm.spec", Format.E_OFFSET, vcpu, "overlapping"),
            new Case("device.1.uart", Format.E_OFFSET, Forge.table(file) - 1, "outside"),
            new Case("device.1.uart", Format.E_OFFSET, -8, "overlapping"),
            new Case("vcpu.0", Format.E_STORED, Long.MAX_VALUE, "storing"),
            new Case("vcpu.0", Format.E_LENGTH, Format.MAX_SECTION + 1, "more than"),
            new Case("vcpu.0", Format.E_LENGTH, 600, "storing 700 bytes for 600"),
            new Case("ram", Format.E_OFFSET, Forge.offset(file, "ram") + 8, "not page-aligned"),
            new Case("ram", Format.E_LENGTH, 4095, "not whole pages"))) {
            byte[] bad = file.clone();
            Forge.set(bad, c.section(), c.field(), c.value());
            String why = refusal(Forge.reseal(bad, null), null);
            assertTrue(why.contains(c.says()), c + ": " + why);
        }
        byte[] renamed = file.clone();
        renamed[Forge.entry(renamed, Forge.index(renamed, "vm.spec"))] = 'X';
        assertTrue(refusal(Forge.reseal(renamed, null), null).contains("bad name"));
        byte[] twice = file.clone();
        System.arraycopy(twice, Forge.entry(twice, 0), twice, Forge.entry(twice, 1), 32);
        assertTrue(refusal(Forge.reseal(twice, null), null).contains("twice"));
        byte[] kind = file.clone();
        Forge.le(kind).putShort(Forge.entry(kind, 0) + Format.E_KIND, (short) 1);
        assertTrue(refusal(Forge.reseal(kind, null), null).contains("only they"));
        byte[] padding = file.clone();
        padding[(int) Forge.offset(padding, "ram") - 1] = 1;
        assertTrue(refusal(Forge.reseal(padding, null), null).contains("padding"));
    }

    @Test
    void aBadSectionHashIsRefusedNamingTheSection() throws Exception {
        byte[] file = small(null, 0);
        for (String section : new String[] {"vm.spec", "vcpu.0", "ram.map", "ram", "device.1.uart"}) {
            byte[] bad = file.clone();
            bad[(int) Forge.offset(bad, section)] ^= 1;
            String why = refusal(bad, null);
            assertTrue(why.contains("section " + section + " (offset " + Forge.offset(bad, section) + ", "), why);
        }
    }

    @Test
    void aPageMapOutsideRamOrDisagreeingWithThePagesIsRefused() throws Exception {
        byte[] file = small(null, 0);
        int map = (int) Forge.offset(file, "ram.map");
        record Case(int at, long value, String says) {
        }
        for (Case c : List.of(new Case(0, 0, "RAM of 0 bytes"), new Case(0, 4097, "RAM of 4097"),
            new Case(0, 8 * Format.PAGE, "outside RAM's 8 pages"), new Case(16, 15, "outside RAM's 16 pages"),
            new Case(16, Long.MAX_VALUE, "outside RAM"), new Case(24, 0, "outside RAM"), new Case(24, -1, "outside RAM"),
            new Case(24, 1, "naming 8192 bytes of pages, but section ram holds 12288"), new Case(32, 2, "before the end of the run before it"))) {
            byte[] bad = file.clone();
            Forge.le(bad).putLong(map + c.at(), c.value());
            String why = refusal(Forge.reseal(bad, null), null);
            assertTrue(why.contains(c.says()), c + ": " + why);
        }
        byte[] page = file.clone();
        Forge.le(page).putInt(map + 8, 8192);
        assertTrue(refusal(Forge.reseal(page, null), null).contains("pages of 8192 bytes"));
    }

    @Test
    void ramCheckedWhenReadOpensWithoutAPassOverRamAndStillRefusesChangedPages() throws Exception {
        byte[] good = small(null, 0);
        byte[] bad = good.clone();
        bad[(int) Forge.offset(bad, "ram") + 5] ^= 1;
        Path file = dir.resolve("changed.nxsnap");
        Files.write(file, bad);
        assertTrue(assertThrows(SnapshotFormatException.class, () -> SnapshotReader.open(file)).getMessage()
            .contains("section ram (offset"));
        try (SnapshotReader r = SnapshotReader.open(file, null, SnapshotReader.RamCheck.WHEN_READ)) {
            assertEquals(3, r.ramExtents().stream().mapToLong(x -> x.length() / Format.PAGE).sum());
            String why = assertThrows(SnapshotFormatException.class, () -> r.copyRamInto(MemorySegment.ofArray(new byte[64 << 10])))
                .getMessage();
            assertTrue(why.contains("RAM pages") && why.contains("do not match their SHA-256"), why);
            assertThrows(SnapshotFormatException.class, r::verify);
        }
        Files.write(file, good, java.nio.file.StandardOpenOption.TRUNCATE_EXISTING);
        try (SnapshotReader r = SnapshotReader.open(file, null, SnapshotReader.RamCheck.WHEN_READ)) {
            r.copyRamInto(MemorySegment.ofArray(new byte[64 << 10]));
            r.verify();
        }
        byte[] header = good.clone();
        header[Format.H_FLAGS] = 4;
        Files.write(file, header, java.nio.file.StandardOpenOption.TRUNCATE_EXISTING);
        assertThrows(SnapshotFormatException.class, () -> SnapshotReader.open(file, null, SnapshotReader.RamCheck.WHEN_READ),
            "everything but the pages is still checked at open");
    }

    @Test
    void ramLargerThanTheTargetIsRefusedWithoutWritingIt() throws Exception {
        byte[] file = small(null, 0);
        byte[] backing = new byte[4096 + (32 << 10) + 4096];
        Arrays.fill(backing, (byte) 0xa5);
        try (SnapshotReader r = SnapshotReader.open(file, null)) {
            String why = assertThrows(SnapshotFormatException.class,
                () -> r.copyRamInto(MemorySegment.ofArray(backing).asSlice(4096, 32 << 10))).getMessage();
            assertTrue(why.contains("more than the 32768 bytes given"), why);
        }
        for (byte b : backing) {
            assertEquals((byte) 0xa5, b);
        }
    }

    @Test
    void encryptedRoundTripHidesTheContent() throws Exception {
        SecretKey key = SnapshotKeys.generate();
        Path file = dir.resolve("e.nxsnap");
        byte[] secret = "the guest's secret, the guest's secret".repeat(100).getBytes();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ram = arena.allocate(16 * MIB, Format.PAGE);
            touch(ram, new Random(5), 0, 7, 8, 9, 4000);
            MemorySegment.copy(MemorySegment.ofArray(secret), 0, ram, 100L * Format.PAGE, secret.length);
            try (SnapshotWriter w = SnapshotWriter.createEncrypted(file, REQUIREMENTS, key)) {
                w.section("vm.spec", secret);
                w.ram(ram, RamPages.all(), SaveProgress.NONE);
                w.finish();
            }
            byte[] bytes = Files.readAllBytes(file);
            assertTrue(bytes.length < 10 * Format.PAGE, "file " + bytes.length);
            String text = new String(bytes, java.nio.charset.StandardCharsets.ISO_8859_1);
            assertFalse(text.contains("guest's secret"), "plaintext in the encrypted file");
            try (SnapshotReader r = SnapshotReader.open(file, key)) {
                assertTrue(r.info().encrypted() && r.info().authenticated());
                assertArrayEquals(secret, r.section("vm.spec"));
                MemorySegment restored = arena.allocate(16 * MIB, Format.PAGE);
                r.copyRamInto(restored);
                assertEquals(-1, ram.mismatch(restored));
                assertThrows(IllegalStateException.class, r::ramExtents);
                r.verify();
            }
            try (SnapshotReader r = SnapshotReader.open(file)) {
                assertFalse(r.info().authenticated());
                assertEquals(List.of("vm.spec"), r.sectionNames());
                assertThrows(IllegalStateException.class, () -> r.section("vm.spec"));
            }
            String why = assertThrows(SnapshotFormatException.class, () -> SnapshotReader.open(file, SnapshotKeys.generate())).getMessage();
            assertTrue(why.contains("does not verify under this key"), why);
        }
        Path plain = dir.resolve("p.nxsnap");
        try (SnapshotWriter w = SnapshotWriter.create(plain, REQUIREMENTS)) {
            w.finish();
        }
        assertTrue(assertThrows(SnapshotFormatException.class, () -> SnapshotReader.open(plain, key)).getMessage().contains("not encrypted"));
    }

    /** The chunks of the named section: (offset, stored length) each, chunk size 256. */
    static long[][] chunks(byte[] file, String section) {
        long offset = Forge.offset(file, section);
        long stored = Forge.stored(file, section);
        List<long[]> chunks = new ArrayList<>();
        for (long at = offset; at < offset + stored; at += 256 + Format.TAG) {
            chunks.add(new long[] {at, Math.min(256 + Format.TAG, offset + stored - at)});
        }
        return chunks.toArray(long[][]::new);
    }

    @Test
    void changedReorderedTruncatedAndReplayedChunksAreRefusedEvenWithTheTableResealed() throws Exception {
        SecretKey key = SnapshotKeys.generate();
        long[] pages = java.util.stream.LongStream.range(0, 17).map(i -> 2 * i).toArray();
        byte[] file = small(key, 256, 256 << 10, pages);
        readAll(file, key);
        byte[] other = small(key, 256, 256 << 10, pages);
        for (String section : new String[] {"vcpu.0", "ram.map", "ram"}) {
            long[][] chunks = chunks(file, section);
            assertTrue(chunks.length >= 2, section + " has " + chunks.length + " chunks");
            byte[] changed = file.clone();
            changed[(int) chunks[1][0] + 3] ^= 1;
            assertTrue(refusal(changed, key).contains("SHA-256"), "without the key the table cannot be resealed");
            assertTrue(refusal(Forge.reseal(changed, key), key).contains("does not authenticate"), section);
            byte[] swapped = file.clone();
            System.arraycopy(file, (int) chunks[1][0], swapped, (int) chunks[0][0], 256 + Format.TAG);
            System.arraycopy(file, (int) chunks[0][0], swapped, (int) chunks[1][0], 256 + Format.TAG);
            assertTrue(refusal(Forge.reseal(swapped, key), key).contains("chunk 0"), section);
            byte[] replayed = file.clone();
            System.arraycopy(other, (int) chunks(other, section)[0][0], replayed, (int) chunks[0][0], 256 + Format.TAG);
            assertTrue(refusal(Forge.reseal(replayed, key), key).contains("does not authenticate"), section + " from another file");
            byte[] repeated = file.clone();
            System.arraycopy(file, (int) chunks[0][0], repeated, (int) chunks[1][0], 256 + Format.TAG);
            assertTrue(refusal(Forge.reseal(repeated, key), key).contains("chunk 1"), section + " chunk 0 again");
        }
        // a section cut after its first chunk, the table saying so and the rest zeroed as padding:
        // that chunk was not sealed as the last, and the later sections' chunk counters moved
        byte[] cut = file.clone();
        int vcpu = (int) Forge.offset(cut, "vcpu.0");
        Arrays.fill(cut, vcpu + 256 + Format.TAG, vcpu + (int) Forge.stored(cut, "vcpu.0"), (byte) 0);
        Forge.set(cut, "vcpu.0", Format.E_LENGTH, 256);
        Forge.set(cut, "vcpu.0", Format.E_STORED, 256 + Format.TAG);
        String why = refusal(Forge.reseal(cut, key), key);
        assertTrue(why.contains("chunk 0 of section") && why.contains("does not authenticate"), why);
    }

    @Test
    void keyFilesMustBePrivateAndHold32BytesRawOrHex() throws Exception {
        SecretKey key = SnapshotKeys.generate();
        Path hex = dir.resolve("hex.key");
        SnapshotKeys.write(hex, key);
        assertArrayEquals(key.getEncoded(), SnapshotKeys.load(hex).getEncoded());
        Path raw = dir.resolve("raw.key");
        Files.write(raw, key.getEncoded());
        Files.setPosixFilePermissions(raw, java.nio.file.attribute.PosixFilePermissions.fromString("r--------"));
        assertArrayEquals(key.getEncoded(), SnapshotKeys.load(raw).getEncoded());
        Files.setPosixFilePermissions(hex, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r-----"));
        String why = assertThrows(IOException.class, () -> SnapshotKeys.load(hex)).getMessage();
        assertTrue(why.contains("accessible to group or others") && why.contains("chmod 600"), why);
        for (byte[] content : new byte[][] {new byte[31], new byte[33], "zz".repeat(32).getBytes(), new byte[0]}) {
            Path bad = dir.resolve("bad.key");
            Files.deleteIfExists(bad);
            Files.write(bad, content);
            Files.setPosixFilePermissions(bad, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
            assertThrows(IOException.class, () -> SnapshotKeys.load(bad));
        }
        Path link = dir.resolve("link.key");
        Files.createSymbolicLink(link, raw);
        assertTrue(assertThrows(IOException.class, () -> SnapshotKeys.load(link)).getMessage().contains("regular file"));
    }
}
