package org.nxia.vmm.internal.micro;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.Timeout;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.image.ElfImage;
import org.nxia.vmm.internal.image.GuestImageException;

/**
 * The ELF loader against untrusted files: mutated valid images and random
 * bytes go through {@link ElfImage#parse} and {@link ImageLoader#load} into
 * heap guest RAM with guard bytes around it. Each either loads, with every
 * segment's bytes in place and nothing written outside the segments, or is
 * refused with a {@link GuestImageException}; any other exception is a crash.
 * {@code nxia.elf.fuzz.cases} cases (default 10^5; 10^6 for a long run).
 * A failure names its case seed: add {@code seed N} to
 * {@code src/test/resources/elf-corpus/seeds.txt}.
 */
class ElfLoaderFuzzTest {

    private static final long MASTER_SEED = 0x6e786961_656c6621L;
    private static final int CASES = Integer.getInteger("nxia.elf.fuzz.cases", 100_000);
    static final int RAM = 4 << 20;
    static final int GUARD = 4096;
    static final int MARGIN = 64;
    static final byte CANARY = (byte) 0xa5;

    /** RAM with a guard on each side; all of it holds {@link #CANARY} between cases. */
    private final byte[] backing = new byte[GUARD + RAM + GUARD];
    private final GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(backing).asSlice(GUARD, RAM));
    int loaded;
    int refused;

    ElfLoaderFuzzTest() {
        Arrays.fill(backing, CANARY);
    }

    /** Parses and loads {@code file}: true when it loaded, false when refused with a GuestImageException. */
    boolean check(byte[] file) {
        byte[] copy = file.clone();
        ElfImage image;
        MicroVmLayout layout;
        try {
            image = ElfImage.parse(file, "fuzz.elf");
            layout = MicroVmLayout.plan(RAM, image.end(), 0, 4096);
            ImageLoader.load(image, memory, layout, "fuzz.elf");
        } catch (GuestImageException e) {
            assertNotNull(e.getMessage());
            assertTrue(e.getMessage().startsWith("fuzz.elf") || e.getMessage().startsWith("the image"), e.getMessage());
            assertGuardsAndRamUntouched();
            refused++;
            return false;
        }
        assertArrayEquals(copy, file, "the loader does not change the file");
        for (ElfImage.LoadSegment s : image.segments()) {
            assertTrue(s.address() >= ElfImage.LOAD_BASE && s.end() <= layout.imageLimit(), "segment inside the image area: " + s);
            assertTrue(s.fileOffset() >= 0 && s.fileSize() >= 0 && s.fileOffset() + s.fileSize() <= file.length, "file bytes inside the file: " + s);
            int a = (int) s.address() + GUARD;
            int fileSize = (int) s.fileSize();
            int offset = (int) s.fileOffset();
            assertTrue(Arrays.equals(backing, a, a + fileSize, file, offset, offset + fileSize), "file bytes of " + s + " in place");
            for (int i = fileSize; i < s.memorySize(); i++) {
                if (backing[a + i] != 0) {
                    fail("byte " + i + " of " + s + " past its file bytes is not zero");
                }
            }
            for (int i = 1; i <= MARGIN; i++) {
                long before = s.address() - i;
                long after = s.end() + i - 1;
                if (before >= 0 && !inSegment(image, before)) {
                    assertEquals(CANARY, backing[(int) before + GUARD], "a byte before " + s + " was written");
                }
                if (after < RAM && !inSegment(image, after)) {
                    assertEquals(CANARY, backing[(int) after + GUARD], "a byte after " + s + " was written");
                }
            }
        }
        assertGuardsAndRamUntouched();
        for (ElfImage.LoadSegment s : image.segments()) {
            Arrays.fill(backing, (int) s.address() + GUARD, (int) s.end() + GUARD, CANARY);
        }
        loaded++;
        return true;
    }

    private static boolean inSegment(ElfImage image, long address) {
        for (ElfImage.LoadSegment o : image.segments()) {
            if (address >= o.address() && address < o.end()) {
                return true;
            }
        }
        return false;
    }

    private static void assertArrayEquals(byte[] expected, byte[] actual, String message) {
        assertTrue(Arrays.equals(expected, actual), message);
    }

    private void assertGuardsAndRamUntouched() {
        for (int i = 0; i < GUARD; i++) {
            if (backing[i] != CANARY || backing[GUARD + RAM + i] != CANARY) {
                fail("a byte outside guest RAM was written");
            }
        }
    }

    /** One case: a mutated valid image, or random bytes, from {@code seed}. */
    static byte[] generate(long seed) {
        Random r = new Random(seed);
        if (r.nextInt(10) == 0) {
            byte[] junk = new byte[r.nextInt(r.nextBoolean() ? 80 : 4096)];
            r.nextBytes(junk);
            if (r.nextBoolean() && junk.length >= 4) {
                junk[0] = 0x7f;
                junk[1] = 'E';
                junk[2] = 'L';
                junk[3] = 'F';
            }
            return junk;
        }
        ElfBuilder b = new ElfBuilder();
        int n = 1 + r.nextInt(4);
        long at = ElfImage.LOAD_BASE;
        for (int i = 0; i < n; i++) {
            byte[] data = new byte[r.nextInt(r.nextInt(16) == 0 ? 16384 : 512)];
            r.nextBytes(data);
            long memsz = data.length + (r.nextBoolean() ? 0 : r.nextInt(8192));
            b.load(at, data, memsz, r.nextBoolean() ? ElfBuilder.PF_R | ElfBuilder.PF_X : ElfBuilder.PF_R | ElfBuilder.PF_W);
            at += (memsz + 0xfff) & ~0xfffL;
            if (r.nextInt(4) == 0) {
                at += 0x1000L * r.nextInt(16);
            }
        }
        b.segment(0).flags = ElfBuilder.PF_R | ElfBuilder.PF_X;
        b.entry(ElfImage.LOAD_BASE + (b.segment(0).memsz > 0 ? r.nextInt((int) Math.max(1, b.segment(0).memsz)) : 0));
        if (r.nextInt(8) == 0) {
            b.trailing = r.nextInt(256);
        }
        byte[] file = b.build();
        return mutate(file, n, r);
    }

    private static final long[] INTERESTING = {0, 1, -1, 0x7f, 0x80, 0xff, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000L,
        0xffff_ffffL, Long.MAX_VALUE, Long.MIN_VALUE, ElfImage.LOAD_BASE, ElfImage.LOAD_BASE - 1, RAM, RAM - 1, 56, 64, 65};

    /** Overwrites header and program-header fields with interesting or random values, flips bytes, truncates. */
    private static byte[] mutate(byte[] file, int phnum, Random r) {
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        int mutations = r.nextInt(4);
        for (int m = 0; m < mutations; m++) {
            long value = r.nextBoolean() ? INTERESTING[r.nextInt(INTERESTING.length)] + (r.nextInt(3) - 1) : r.nextLong();
            switch (r.nextInt(6)) {
                case 0 -> {   // an ELF header field
                    int[] fields = {4, 5, 16, 18, 24, 32, 54, 56};
                    int f = fields[r.nextInt(fields.length)];
                    put(b, f, f < 16 ? 1 : f == 24 || f == 32 ? 8 : 2, value);
                }
                case 1, 2, 3 -> {   // a program header field
                    int field = new int[] {0, 4, 8, 16, 24, 32, 40}[r.nextInt(7)];   // p_type and p_flags are 4 bytes
                    put(b, 64 + 56 * r.nextInt(phnum) + field, field < 8 ? 4 : 8, value);
                }
                case 4 -> file[r.nextInt(file.length)] ^= (byte) (1 << r.nextInt(8));
                default -> {
                    int cut = r.nextInt(file.length + 1);
                    return Arrays.copyOf(file, r.nextBoolean() ? cut : file.length + r.nextInt(64));
                }
            }
        }
        return file;
    }

    private static void put(ByteBuffer b, int at, int size, long value) {
        if (at + size > b.capacity()) {
            return;
        }
        switch (size) {
            case 1 -> b.put(at, (byte) value);
            case 2 -> b.putShort(at, (short) value);
            case 4 -> b.putInt(at, (int) value);
            default -> b.putLong(at, value);
        }
    }

    @Test
    @Timeout(value = 600, unit = TimeUnit.SECONDS)
    void everyFileLoadsInsideItsSegmentsOrIsRefused() {
        Random seeds = new Random(MASTER_SEED);
        long heapBefore = usedHeap(true);
        long heapPeak = heapBefore;
        long start = System.nanoTime();
        for (int i = 0; i < CASES; i++) {
            long seed = seeds.nextLong();
            try {
                check(generate(seed));
            } catch (RuntimeException | AssertionError e) {
                throw new AssertionError("ELF fuzz case seed " + seed + ": " + e, e);
            }
            if (i % 1000 == 0) {
                heapPeak = Math.max(heapPeak, usedHeap(false));
            }
        }
        long heapAfter = usedHeap(true);
        System.out.printf("ELF loader fuzz: %,d cases in %,d ms, 0 crashes: %,d loaded, %,d refused; heap %,d -> %,d -> %,d bytes%n",
                CASES, (System.nanoTime() - start) / 1_000_000, loaded, refused, heapBefore, heapPeak, heapAfter);
        // the mix must exercise both outcomes, or the generator has drifted
        assertTrue(loaded > CASES / 10, "too few images loaded: " + loaded);
        assertTrue(refused > CASES / 10, "too few images refused: " + refused);
        assertTrue(heapAfter <= heapBefore + (16 << 20), "heap " + heapBefore + " -> " + heapAfter);
    }

    private static long usedHeap(boolean gc) {
        if (gc) {
            System.gc();
        }
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    /** Replays {@code elf-corpus/}: {@code ok-*.elf} must load, {@code bad-*.elf} be refused, {@code seeds.txt} cases pass. */
    @TestFactory
    Stream<DynamicTest> replaysTheCorpus() throws Exception {
        URL url = getClass().getClassLoader().getResource("elf-corpus");
        assertNotNull(url, "elf-corpus is missing from the test resources");
        List<Path> files;
        try (Stream<Path> listing = Files.list(Path.of(url.toURI()))) {
            files = listing.filter(p -> !p.getFileName().toString().endsWith(".md")).sorted().toList();
        }
        assertFalse(files.isEmpty());
        return files.stream().map(f -> DynamicTest.dynamicTest(f.getFileName().toString(), () -> {
            String name = f.getFileName().toString();
            if (name.endsWith(".txt")) {
                for (String line : Files.readAllLines(f)) {
                    String l = line.contains("#") ? line.substring(0, line.indexOf('#')).strip() : line.strip();
                    if (l.startsWith("seed ")) {
                        check(generate(Long.parseLong(l.substring(5).strip())));
                    }
                }
            } else {
                assertEquals(name.startsWith("ok-"), check(Files.readAllBytes(f)), name);
            }
        }));
    }
}
