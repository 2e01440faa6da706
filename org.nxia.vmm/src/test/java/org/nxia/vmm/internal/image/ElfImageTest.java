package org.nxia.vmm.internal.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.nxia.vmm.internal.image.ElfBuilder.PF_R;
import static org.nxia.vmm.internal.image.ElfBuilder.PF_W;
import static org.nxia.vmm.internal.image.ElfBuilder.PF_X;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ElfImageTest {

    private static ElfImage parse(ElfBuilder b) {
        return ElfImage.parse(b.build(), "g.elf");
    }

    private static String rejection(byte[] file) {
        GuestImageException e = assertThrows(GuestImageException.class, () -> ElfImage.parse(file, "g.elf"));
        assertTrue(e.getMessage().startsWith("g.elf: "), e.getMessage());
        return e.getMessage();
    }

    private static String rejection(ElfBuilder b) {
        return rejection(b.build());
    }

    private static void assertMentions(String message, String... parts) {
        for (String part : parts) {
            assertTrue(message.contains(part), () -> "'" + message + "' does not mention '" + part + "'");
        }
    }

    @Test
    void parsesMinimalImage() {
        byte[] file = ElfBuilder.minimal().build();
        ElfImage image = ElfImage.parse(file, "g.elf");
        assertEquals(0x100000, image.entry());
        assertEquals(List.of(new ElfImage.LoadSegment(0x100000, 64 + 56, 1, 0x1000, true)), image.segments());
        assertEquals(0x101000, image.end());
        assertSame(file, image.bytes());
    }

    @Test
    void parsesSegmentsSortedByAddressSkippingOtherTypesAndEmptyLoads() {
        ElfBuilder b = new ElfBuilder();
        b.load(0x200000, new byte[] {1, 2}, 0x3000, PF_R | PF_W);
        ElfBuilder.Phdr note = b.load(0x10, new byte[4], 4, PF_R);  // below 0x100000 but not PT_LOAD: ignored
        note.type = ElfBuilder.PT_NOTE;
        note.paddr = 0x99L;
        b.load(0x100000, new byte[] {(byte) 0xf4}, 0x1000, PF_R | PF_X);
        b.load(0x400000, new byte[0], 0, PF_R);  // empty PT_LOAD: nothing to load
        b.entry(0x100000);
        ElfImage image = parse(b);
        assertEquals(2, image.segments().size());
        assertEquals(0x100000, image.segments().get(0).address());
        assertTrue(image.segments().get(0).executable());
        assertEquals(0x200000, image.segments().get(1).address());
        assertFalse(image.segments().get(1).executable());
        assertEquals(0x203000, image.end());
    }

    @Test
    void acceptsAdjacentSegmentsAndEntryAtLastExecutableByte() {
        ElfBuilder b = ElfBuilder.minimal();
        b.load(0x101000, new byte[8], 0x1000, PF_R | PF_W);
        b.entry(0x100fff);
        assertEquals(2, parse(b).segments().size());
    }

    @Test
    void acceptsBssLargerThanFileBytes() {
        ElfBuilder b = ElfBuilder.minimal();
        b.load(0x200000, new byte[] {7}, 1L << 30, PF_R | PF_W);
        ElfImage.LoadSegment bss = parse(b).segments().get(1);
        assertEquals(1, bss.fileSize());
        assertEquals(1L << 30, bss.memorySize());
    }

    @Test
    void segmentListIsImmutable() {
        ElfImage image = parse(ElfBuilder.minimal());
        assertThrows(UnsupportedOperationException.class, () -> image.segments().clear());
    }

    @Test
    void rejectsFileThatIsNotElf() {
        assertMentions(rejection(new byte[0]), "not an ELF file");
        assertMentions(rejection(new byte[] {0x7f, 'E', 'L'}), "not an ELF file");
        assertMentions(rejection("#!/bin/sh\necho hello\n".getBytes()), "not an ELF file", "guest kit");
        byte[] file = ElfBuilder.minimal().build();
        file[3] = 'G';
        assertMentions(rejection(file), "not an ELF file");
    }

    @ParameterizedTest
    @ValueSource(ints = {4, 5, 16, 63})
    void rejectsTruncatedHeader(int length) {
        byte[] file = Arrays.copyOf(ElfBuilder.minimal().build(), length);
        assertEquals("g.elf: truncated ELF header (" + length + " bytes, need 64)", rejection(file));
    }

    @Test
    void rejectsElf32() {
        ElfBuilder b = ElfBuilder.minimal();
        b.elfClass = 1;
        assertMentions(rejection(b), "32-bit");
    }

    @Test
    void rejectsUnknownElfClass() {
        ElfBuilder b = ElfBuilder.minimal();
        b.elfClass = 0;
        assertMentions(rejection(b), "32-bit");  // anything but ELFCLASS64 is refused here
    }

    @Test
    void rejectsBigEndian() {
        ElfBuilder b = ElfBuilder.minimal();
        b.dataEncoding = 2;
        assertMentions(rejection(b), "big-endian");
    }

    @Test
    void rejectsAArch64NamingIt() {
        ElfBuilder b = ElfBuilder.minimal();
        b.machine = 183;
        assertMentions(rejection(b), "AArch64", "not x86-64");
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 3, 40, 243, 0xffff})
    void rejectsOtherMachines(int machine) {
        ElfBuilder b = ElfBuilder.minimal();
        b.machine = machine;
        assertMentions(rejection(b), "built for ", ", not x86-64");
    }

    @Test
    void rejectsPositionIndependentExecutableSayingNoPie() {
        ElfBuilder b = ElfBuilder.minimal();
        b.type = 3;
        assertMentions(rejection(b), "-no-pie", "0x100000");
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 4, 0xffff})
    void rejectsTypesOtherThanExec(int type) {
        ElfBuilder b = ElfBuilder.minimal();
        b.type = type;
        assertEquals("g.elf: ELF type " + type + " is not an executable (ET_EXEC)", rejection(b));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 32, 55, 57, 64, 0xffff})
    void rejectsWrongProgramHeaderSize(int size) {
        ElfBuilder b = ElfBuilder.minimal();
        b.phentsize = size;
        assertEquals("g.elf: program header size " + size + " is not the ELF64 size 56", rejection(b));
    }

    @Test
    void rejectsNoProgramHeaders() {
        ElfBuilder b = ElfBuilder.minimal();
        b.phnum = 0;
        assertMentions(rejection(b), "no program headers");
    }

    @ParameterizedTest
    @ValueSource(ints = {65, 1000, 0xffff})
    void rejectsMoreThanSixtyFourProgramHeaders(int count) {
        ElfBuilder b = ElfBuilder.minimal();
        b.phnum = count;
        assertEquals("g.elf: " + count + " program headers; at most 64 are accepted", rejection(b));
    }

    @Test
    void acceptsExactlySixtyFourProgramHeaders() {
        ElfBuilder b = ElfBuilder.minimal();
        for (int i = 1; i < 64; i++) {
            b.load(0x200000 + i * 0x1000L, new byte[] {(byte) i}, 0x1000, PF_R);
        }
        assertEquals(64, parse(b).segments().size());
    }

    @ParameterizedTest
    @ValueSource(longs = {
            66,                       // the header runs one byte past the end
            1 << 20,                  // past the end
            -1,                       // negative as a signed offset
            Long.MIN_VALUE,
            Long.MAX_VALUE,           // phoff + phnum * 56 overflows
            Long.MAX_VALUE - 55,
            0x7fff_ffff_ffff_ff00L})
    void rejectsProgramHeaderTableOutsideFile(long phoff) {
        ElfBuilder b = ElfBuilder.minimal();
        b.phoff = phoff;
        assertMentions(rejection(b), "program header table", "lies outside the");
    }

    /** A table at offset 0 lies inside the file (over the ELF header): refused for what it holds, not for where it is. */
    @Test
    void aProgramHeaderTableAtOffsetZeroIsReadWhereItIs() {
        ElfBuilder b = ElfBuilder.minimal();
        b.phoff = 0L;
        String why = rejection(b);
        org.junit.jupiter.api.Assertions.assertFalse(why.contains("lies outside"), why);
    }

    @Test
    void rejectsProgramHeaderTableCutShort() {
        byte[] file = Arrays.copyOf(ElfBuilder.minimal().build(), 64 + 55);
        assertMentions(rejection(file), "program header table [64, +56) lies outside the 119-byte file");
    }

    @Test
    void acceptsProgramHeaderTableEndingAtEndOfFile() {
        ElfBuilder b = ElfBuilder.minimal();
        b.segment(0).offset = 0L;
        b.segment(0).filesz = 0L;
        b.segment(0).data = new byte[0];
        assertEquals(64 + 56, parse(b).bytes().length);
    }

    @ParameterizedTest
    @ValueSource(longs = {-1, Long.MIN_VALUE, 122, 1 << 20, Long.MAX_VALUE})
    void rejectsSegmentOffsetOutsideFile(long offset) {
        ElfBuilder b = ElfBuilder.minimal();
        b.segment(0).offset = offset;
        b.segment(0).filesz = 0L;
        assertMentions(rejection(b), "segment 0 (PT_LOAD at 0x100000): its file bytes", "lie outside the 121-byte file");
    }

    @ParameterizedTest
    @ValueSource(longs = {2, 1 << 20, -1, Long.MIN_VALUE, Long.MAX_VALUE, Long.MAX_VALUE - 119})
    void rejectsSegmentFileRangeOutsideFileIncludingOverflow(long filesz) {
        ElfBuilder b = ElfBuilder.minimal();  // the one file byte is at offset 120, the file is 121 bytes
        b.segment(0).filesz = filesz;
        b.segment(0).memsz = Long.MAX_VALUE - 0x100000;
        assertMentions(rejection(b), "its file bytes [120, +" + filesz + ")", "outside the 121-byte file");
    }

    @Test
    void acceptsSegmentFileRangeEndingAtEndOfFile() {
        ElfBuilder b = ElfBuilder.minimal();
        b.segment(0).offset = 0L;
        b.segment(0).filesz = 121L;
        assertEquals(121, parse(b).segments().getFirst().fileSize());
    }

    @Test
    void rejectsFileSizeLargerThanMemorySize() {
        ElfBuilder b = ElfBuilder.minimal();
        b.segment(0).memsz = 0;
        assertMentions(rejection(b), "file size 1 exceeds memory size 0");
    }

    @ParameterizedTest
    @ValueSource(longs = {-1, Long.MIN_VALUE})
    void rejectsNegativeMemorySize(long memsz) {
        ElfBuilder b = ElfBuilder.minimal();
        b.segment(0).filesz = 0L;
        b.segment(0).memsz = memsz;
        assertMentions(rejection(b), "exceeds memory size " + memsz);
    }

    @Test
    void rejectsPhysicalAddressDifferentFromVirtual() {
        ElfBuilder b = ElfBuilder.minimal();
        b.segment(0).paddr = 0x200000L;
        assertMentions(rejection(b), "physical address 0x200000", "p_vaddr == p_paddr");
    }

    @ParameterizedTest
    @ValueSource(longs = {0, 0x1000, 0xfffff, -0x80000000L, Long.MIN_VALUE})
    void rejectsSegmentBelowLoadBase(long vaddr) {
        ElfBuilder b = ElfBuilder.minimal();
        b.segment(0).vaddr = vaddr;
        b.entry(vaddr);
        assertMentions(rejection(b), "lies below 0x100000", "link at 0x100000");
    }

    @ParameterizedTest
    @ValueSource(longs = {Long.MAX_VALUE, Long.MAX_VALUE - 0xfff, 0x4000_0000_0000_0000L + 1})
    void rejectsSegmentWhoseEndOverflows(long vaddr) {
        ElfBuilder b = ElfBuilder.minimal();
        b.segment(0).vaddr = vaddr;
        b.segment(0).memsz = 0x4000_0000_0000_0000L;
        b.entry(vaddr);
        assertMentions(rejection(b), "address + size overflows");
    }

    @Test
    void acceptsSegmentEndingExactlyAtLongMaxValue() {
        // Parsing allows it; the layout (ImageLoader) refuses what does not fit the RAM.
        long vaddr = Long.MAX_VALUE - 0x1000;
        ElfBuilder b = ElfBuilder.minimal().entry(vaddr);
        b.segment(0).vaddr = vaddr;
        assertEquals(Long.MAX_VALUE, parse(b).end());
    }

    @Test
    void rejectsOverlappingSegments() {
        ElfBuilder b = ElfBuilder.minimal();
        b.load(0x100fff, new byte[1], 0x10, PF_R);
        assertEquals("g.elf: segments at 0x100000 and 0x100fff overlap", rejection(b));
    }

    @Test
    void rejectsOverlappingSegmentsListedOutOfOrder() {
        ElfBuilder b = new ElfBuilder();
        b.load(0x180000, new byte[1], 0x1000, PF_R);
        b.load(0x100000, new byte[] {(byte) 0xf4}, 0x100000, PF_R | PF_X);  // covers 0x180000
        assertMentions(rejection(b), "segments at 0x100000 and 0x180000 overlap");
    }

    @Test
    void rejectsIdenticalSegments() {
        ElfBuilder b = ElfBuilder.minimal();
        b.load(0x100000, new byte[1], 0x1000, PF_R | PF_X);
        assertMentions(rejection(b), "overlap");
    }

    @ParameterizedTest
    @ValueSource(longs = {0, 0xfffff, 0x101000, 0x200000, 0x200800, -1, Long.MAX_VALUE})
    void rejectsEntryOutsideAnyExecutableSegment(long entry) {
        ElfBuilder b = ElfBuilder.minimal().entry(entry);
        b.load(0x200000, new byte[1], 0x1000, PF_R | PF_W);  // data: entry here is refused too
        assertEquals("g.elf: entry point 0x" + Long.toHexString(entry) + " is not inside an executable segment", rejection(b));
    }

    @Test
    void rejectsImageWithoutLoadSegment() {
        ElfBuilder b = ElfBuilder.minimal();
        b.segment(0).type = ElfBuilder.PT_NOTE;
        assertEquals("g.elf: no loadable (PT_LOAD) segment", rejection(b));
    }

    @Test
    void rejectsImageWhoseOnlyLoadIsEmpty() {
        ElfBuilder b = ElfBuilder.minimal();
        b.segment(0).filesz = 0L;
        b.segment(0).memsz = 0;
        assertEquals("g.elf: no loadable (PT_LOAD) segment", rejection(b));
    }

    @Test
    void rejectsFileLargerThan256Mib() {
        byte[] huge = new byte[ElfImage.MAX_FILE_SIZE + 1];
        assertMentions(rejection(huge), "larger than the 256 MiB");
    }

    @Test
    void messagesCarryTheGivenName() {
        GuestImageException e = assertThrows(GuestImageException.class, () -> ElfImage.parse(new byte[0], "/tmp/x/evil.bin"));
        assertEquals("/tmp/x/evil.bin: not an ELF file (no \\x7fELF magic); give a guest built with the guest kit (guest/)",
                e.getMessage());
        byte[] truncated = Arrays.copyOf(ElfBuilder.minimal().build(), 20);
        e = assertThrows(GuestImageException.class, () -> ElfImage.parse(truncated, "/tmp/x/evil.bin"));
        assertEquals("/tmp/x/evil.bin: truncated ELF header (20 bytes, need 64)", e.getMessage());
    }

    /**
     * The parser faces untrusted files: whatever the bytes, it parses or throws
     * {@link GuestImageException}, never an index, arithmetic or other exception.
     */
    @Test
    void randomMutationsEitherParseOrThrowGuestImageException() {
        ElfBuilder b = ElfBuilder.minimal();
        b.load(0x200000, new byte[64], 0x2000, PF_R | PF_W);
        b.load(0x300000, new byte[16], 0x10, PF_R);
        byte[] valid = b.build();
        ElfImage.parse(valid, "valid");
        // Header and program-header field offsets the mutations aim at, so most runs get past the magic.
        int[] fields = {4, 5, 16, 18, 24, 32, 54, 56, 64, 68, 72, 80, 88, 96, 104, 120, 128, 136, 144, 152, 176, 184, 192, 200};
        long[] nasty = {0, 1, -1, Long.MIN_VALUE, Long.MAX_VALUE, Long.MAX_VALUE - 55, 0x100000, 0xfffff, 0x7fffffff,
                0xffffffffL, 56, 64, 65, valid.length, valid.length + 1, 1L << 32, 0x100fff};
        Random random = new Random(0x5eed_e1fL);
        int parsed = 0;
        for (int round = 0; round < 20_000; round++) {
            byte[] file = valid.clone();
            int mutations = 1 + random.nextInt(4);
            for (int m = 0; m < mutations && file.length > 0; m++) {
                switch (random.nextInt(6)) {
                    case 0 -> file[random.nextInt(file.length)] = (byte) random.nextInt();
                    case 1 -> file[random.nextInt(file.length)] ^= (byte) (1 << random.nextInt(8));
                    case 2 -> put(file, fields[random.nextInt(fields.length)], nasty[random.nextInt(nasty.length)], 1 << random.nextInt(4));
                    case 3 -> put(file, fields[random.nextInt(fields.length)], random.nextLong(), 1 << random.nextInt(4));
                    case 4 -> file = Arrays.copyOf(file, random.nextInt(file.length + 1));
                    default -> file = Arrays.copyOf(file, file.length + random.nextInt(256));
                }
            }
            try {
                ElfImage image = ElfImage.parse(file, "fuzz");
                parsed++;
                checkInvariants(image, file);
            } catch (GuestImageException expected) {
                // refused with a message: fine
            } catch (RuntimeException e) {
                fail("round " + round + " threw " + e + " for " + java.util.HexFormat.of().formatHex(file), e);
            }
        }
        assertTrue(parsed > 0, "no mutation parsed: the test is not exercising the accepted path");
    }

    private static void checkInvariants(ElfImage image, byte[] file) {
        long previousEnd = ElfImage.LOAD_BASE;
        boolean entryFound = false;
        for (ElfImage.LoadSegment s : image.segments()) {
            assertTrue(s.address() >= previousEnd, "segments sorted and disjoint");
            assertTrue(s.memorySize() > 0 && s.fileSize() >= 0 && s.fileSize() <= s.memorySize());
            assertTrue(s.fileOffset() >= 0 && s.fileOffset() + s.fileSize() <= file.length);
            assertTrue(s.end() > s.address(), "no overflow");
            entryFound |= s.executable() && image.entry() >= s.address() && image.entry() < s.end();
            previousEnd = s.end();
        }
        assertTrue(entryFound);
    }

    private static void put(byte[] file, int offset, long value, int width) {
        for (int i = 0; i < width && offset + i < file.length; i++) {
            file[offset + i] = (byte) (value >>> (8 * i));
        }
    }

    @Test
    void parseDoesNotModifyTheFile() {
        byte[] file = ElfBuilder.minimal().build();
        byte[] copy = file.clone();
        ElfImage.parse(file, "g.elf");
        assertArrayEquals(copy, file);
    }
}
