package org.nxia.snapshot.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

import javax.crypto.SecretKey;

import org.junit.jupiter.api.Test;
import org.nxia.snapshot.internal.Format;

/**
 * The reader against hostile files: mutated corpus snapshots (bit flips, random bytes,
 * interesting values in header, table and page-map fields, truncation, extension, splices
 * from other files, moved chunks), half of them resealed (hashes, digest and, with the key,
 * the table tag recomputed) so that the checks behind the hashes are reached. Each case is
 * opened, its sections read and its RAM copied into a target with guard bytes around it. It
 * either reads, with nothing written outside the stored pages, or is refused with a
 * {@link SnapshotFormatException}; anything else fails the test with the case's seed. The
 * heap a case allocates is bounded by its file size.
 * {@code nxia.snapshot.fuzz.cases} cases (default 10^6: 17 s on two idle cores, 51 s on the same two shared with three other builds).
 */
class SnapshotFuzzTest {

    private static final long MASTER_SEED = 0x6e786961_736e6170L;
    private static final int CASES = Integer.getInteger("nxia.snapshot.fuzz.cases", 1_000_000);
    private static final int GUARD = 4096;
    private static final int RAM = (int) SnapshotCorpus.RAM;
    private static final byte CANARY = (byte) 0xa5;
    /** Heap a case may allocate: a few times its file plus the JCA objects and one I/O buffer. */
    static final long ALLOCATION_FACTOR = 4;
    static final long ALLOCATION_CONSTANT = 256 << 10;

    private final byte[] backing = new byte[GUARD + RAM + GUARD];
    private final byte[] canaries = new byte[GUARD + RAM + GUARD];
    private final MemorySegment target = MemorySegment.ofArray(backing).asSlice(GUARD, RAM);
    private final com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private final Map<String, Integer> outcomes = new TreeMap<>();
    private long maxExcess;
    /** A quarter of the cases defer RAM's hash to the copy: then unchecked pages reach the target, still only inside it. */
    private SnapshotReader.RamCheck ramCheck = SnapshotReader.RamCheck.AT_OPEN;
    /** Class loading and the JCA's first use allocate once; the bound holds from the first case after warming up. */
    private boolean warm;

    SnapshotFuzzTest() {
        Arrays.fill(backing, CANARY);
        Arrays.fill(canaries, CANARY);
    }

    private void warmUp(List<SnapshotCorpus.Entry> corpus) throws Exception {
        for (int i = 0; i < 20; i++) {
            for (SnapshotCorpus.Entry e : corpus) {
                check(e.bytes(), e.key());
                check(Arrays.copyOf(e.bytes(), e.bytes().length - 1), e.key());
            }
        }
        warm = true;
    }

    @Test
    void theCorpusReadsCleanly() throws Exception {
        warmUp(SnapshotCorpus.load());
        for (SnapshotCorpus.Entry e : SnapshotCorpus.load()) {
            assertEquals("read", check(e.bytes(), e.key()), e.name());
        }
    }

    @Test
    void mutatedSnapshotsAreReadOrRefusedNeverCrashNeverWriteOutsideRam() throws Exception {
        List<SnapshotCorpus.Entry> corpus = SnapshotCorpus.load();
        warmUp(corpus);
        long start = System.nanoTime();
        long bytes = 0;
        for (int i = 0; i < CASES; i++) {
            long seed = MASTER_SEED + i;
            SplittableRandom r = new SplittableRandom(seed);
            SnapshotCorpus.Entry base = corpus.get(r.nextInt(corpus.size()));
            byte[] file = mutate(base.bytes().clone(), corpus, r);
            SecretKey key = base.key();
            if (r.nextInt(8) == 0) {
                key = r.nextBoolean() ? null : SnapshotCorpus.KEY;
            }
            if (r.nextBoolean()) {
                Forge.reseal(file, key != null && r.nextInt(4) != 0 ? key : null);
            }
            bytes += file.length;
            ramCheck = r.nextInt(4) == 0 ? SnapshotReader.RamCheck.WHEN_READ : SnapshotReader.RamCheck.AT_OPEN;
            try {
                outcomes.merge(check(file, key), 1, Integer::sum);
            } catch (Throwable t) {
                throw new AssertionError("case seed " + seed + " (" + base.name() + ", " + file.length + " bytes): " + t, t);
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("snapshot fuzz: %d cases (%.1f MiB) in %.1f s (%.0f cases/s); heap per case <= %d x file + %d KiB "
            + "(worst excess %d bytes); outcomes: %s%n", CASES, bytes / 1048576.0, seconds, CASES / seconds, ALLOCATION_FACTOR,
            ALLOCATION_CONSTANT >> 10, maxExcess, outcomes);
        assertTrue(outcomes.getOrDefault("read", 0) > 0, "some mutations still read: " + outcomes);
        assertTrue(outcomes.size() > 20, "the refusals reach many checks: " + outcomes);
    }

    /** One file: "read", or the kind of refusal. Fails on any other exception, on a write outside RAM, on too much heap. */
    String check(byte[] file, SecretKey key) throws Exception {
        long before = threads.getCurrentThreadAllocatedBytes();
        String outcome;
        List<RamRange> written = null;
        try (SnapshotReader reader = SnapshotReader.open(file, key, ramCheck)) {
            SnapshotInfo info = reader.info();
            if (info.authenticated()) {
                for (String name : reader.sectionNames()) {
                    reader.section(name);
                }
                if (reader.hasRam()) {
                    written = reader.ramRanges();
                    reader.copyRamInto(target);
                }
                reader.verify();
            }
            outcome = "read";
        } catch (SnapshotFormatException e) {
            outcome = kind(e.getMessage());
        }
        long allocated = threads.getCurrentThreadAllocatedBytes() - before;
        long excess = allocated - ALLOCATION_FACTOR * file.length;
        if (warm) {
            maxExcess = Math.max(maxExcess, excess);
        }
        if (warm && excess > ALLOCATION_CONSTANT) {
            fail("allocated " + allocated + " bytes for a file of " + file.length);
        }
        if (written != null) {   // the target was handed to the reader
            checkRam(written);
        }
        return outcome;
    }

    /** Guards untouched; in RAM only the stored ranges written (then reset). */
    private void checkRam(List<RamRange> written) {
        if (Arrays.mismatch(backing, 0, GUARD, canaries, 0, GUARD) >= 0
            || Arrays.mismatch(backing, GUARD + RAM, backing.length, canaries, GUARD + RAM, backing.length) >= 0) {
            fail("a byte outside guest RAM was written");
        }
        long at = 0;
        for (RamRange w : written) {
            if (Arrays.mismatch(backing, GUARD + (int) at, GUARD + (int) w.offset(), canaries, 0, (int) (w.offset() - at)) >= 0) {
                fail("RAM outside the stored pages was written (before " + w + ")");
            }
            Arrays.fill(backing, GUARD + (int) w.offset(), GUARD + (int) w.end(), CANARY);
            at = w.end();
        }
        if (Arrays.mismatch(backing, GUARD + (int) at, GUARD + RAM, canaries, 0, (int) (RAM - at)) >= 0) {
            fail("RAM outside the stored pages was written (after " + at + ")");
        }
    }

    private static final String[] KINDS = {"shorter than the", "is not a snapshot", "format version", "unknown flags", "header length",
        "sections (offset", "truncated or extended", "section table at", "chunk size", "reserved header field", "has a salt",
        "requirement", "header and section table", "does not authenticate:", "not encrypted", "bad name", "name with bytes",
        "twice", "unknown kind", "reserved bytes", "only they", "not whole pages", "more than 16777216", "storing",
        "overlapping", "outside the sections' area", "unaccounted", "not page-aligned", "padding", "that does not match its SHA-256",
        "no page map", "no RAM pages", "page map (section ram.map", "does not authenticate", "more than the",
        "do not match their SHA-256"};

    private static String kind(String message) {
        for (String kind : KINDS) {
            if (message.contains(kind)) {
                if (kind.equals("does not authenticate:")) {
                    return "table tag (wrong key or forged table)";
                }
                if (kind.equals("does not authenticate")) {
                    return "chunk tag";
                }
                if (kind.startsWith("page map")) {
                    return message.contains("outside RAM") ? "page map: run outside RAM" : message.contains("before the end")
                        ? "page map: runs out of order" : message.contains("naming") ? "page map: pages disagree" : "page map: header";
                }
                return kind;
            }
        }
        return "other: " + message;
    }

    private static final long[] INTERESTING = {0, 1, -1, 7, 8, 63, 64, 95, 96, 255, 256, 4095, 4096, 4097, 0xffff, 0x1_0000,
        0x7fff_ffffL, 0x8000_0000L, 0xffff_ffffL, Long.MAX_VALUE, Long.MIN_VALUE, Format.MAX_SECTION, Format.MAX_SECTION + 1,
        Format.MAX_RAM, RAM, RAM + 4096};

    static byte[] mutate(byte[] file, List<SnapshotCorpus.Entry> corpus, SplittableRandom r) {
        int mutations = 1 + r.nextInt(3);
        for (int m = 0; m < mutations && file.length > 0; m++) {
            long value = r.nextBoolean() ? INTERESTING[r.nextInt(INTERESTING.length)] + r.nextInt(3) - 1 : r.nextLong();
            switch (r.nextInt(10)) {
                case 0 -> file[r.nextInt(file.length)] ^= (byte) (1 << r.nextInt(8));
                case 1 -> file[r.nextInt(file.length)] = (byte) r.nextInt(256);
                case 2 -> put(file, new int[] {8, 10, 12, 16, 20, 24, 32, 40, 44, 48, 64, 66}[r.nextInt(12)], 1 << r.nextInt(4), value);
                case 3, 4 -> {   // a table entry's field
                    if (file.length < Format.FIXED_HEADER) {
                        break;
                    }
                    int count = Forge.le(file).getInt(Format.H_SECTION_COUNT);
                    long table = Forge.le(file).getLong(Format.H_TABLE_OFFSET);
                    if (count > 0 && count <= Format.MAX_SECTIONS && table > 0 && table < file.length) {
                        int field = new int[] {0, 5, 31, 32, 34, 36, 40, 48, 56, 64}[r.nextInt(10)];
                        put(file, (int) table + r.nextInt(count) * Format.ENTRY + field, field < 40 ? 1 << r.nextInt(3) : 8, value);
                    }
                }
                case 5 -> {   // the page map's fields (plain files; in encrypted ones this hits ciphertext)
                    try {
                        int map = (int) Forge.offset(file, "ram.map");
                        put(file, map + new int[] {0, 8, 12, 16, 24, 32, 40}[r.nextInt(7)], 8, value);
                    } catch (RuntimeException e) {
                        file[r.nextInt(file.length)] ^= 1;
                    }
                }
                case 6 -> {   // a splice: a range of another corpus file (or this one) over this one
                    byte[] from = corpus.get(r.nextInt(corpus.size())).bytes();
                    int length = 1 + r.nextInt(Math.min(from.length, 1 + r.nextInt(600)));
                    int src = r.nextInt(from.length - length + 1);
                    int dst = r.nextInt(Math.max(1, file.length - length + 1));
                    System.arraycopy(from, src, file, dst, Math.min(length, file.length - dst));
                }
                case 7 -> {   // a chunk-sized block moved within the file
                    int length = 256 + Format.TAG;
                    if (file.length > 2 * length) {
                        System.arraycopy(file.clone(), r.nextInt(file.length - length), file, r.nextInt(file.length - length), length);
                    }
                }
                case 8 -> file = Arrays.copyOf(file, r.nextInt(file.length + 1));
                default -> {
                    byte[] longer = Arrays.copyOf(file, file.length + 1 + r.nextInt(r.nextBoolean() ? 16 : 8192));
                    if (r.nextBoolean()) {
                        for (int i = file.length; i < longer.length; i++) {
                            longer[i] = (byte) r.nextInt(256);
                        }
                    }
                    file = longer;
                }
            }
        }
        return file;
    }

    private static void put(byte[] file, int at, int size, long value) {
        if (at < 0 || at + size > file.length) {
            return;
        }
        var b = Forge.le(file);
        switch (size) {
            case 1 -> b.put(at, (byte) value);
            case 2 -> b.putShort(at, (short) value);
            case 4 -> b.putInt(at, (int) value);
            default -> b.putLong(at, value);
        }
    }
}
