package org.nxia.vmm.internal.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

import org.junit.jupiter.api.Test;

/** The ELF loader's length checks one byte either side. */
class ElfBoundsTest {

    private static String refusal(byte[] file) {
        return assertThrows(GuestImageException.class, () -> ElfImage.parse(file, "g")).getMessage();
    }

    @Test
    void aFileOfExactlyTheLargestSizeIsReadAndOneMoreIsNot() {
        byte[] largest = new byte[ElfImage.MAX_FILE_SIZE];
        assertTrue(refusal(largest).startsWith("g: not an ELF file"), "read as far as its magic");
        largest = null;
        assertTrue(refusal(new byte[ElfImage.MAX_FILE_SIZE + 1]).contains("is larger than the 256 MiB"));
    }

    @Test
    void aSixtyFourByteHeaderIsWholeAndSixtyThreeBytesAreNot() {
        byte[] header = Arrays.copyOf(ElfBuilder.minimal().build(), 64);
        ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN).putShort(56, (short) 0);
        assertEquals("g: no program headers, so nothing to load", refusal(header));
        assertEquals("g: truncated ELF header (63 bytes, need 64)", refusal(Arrays.copyOf(header, 63)));
    }

    @Test
    void aProgramHeaderTableThatEndsAtTheFilesEndIsInside() {
        byte[] file = ElfBuilder.minimal().build();
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        long phoff = b.getLong(32);
        byte[] moved = Arrays.copyOf(file, file.length + 56);
        System.arraycopy(file, (int) phoff, moved, file.length, 56);   // the one header, again, at the very end
        ByteBuffer.wrap(moved).order(ByteOrder.LITTLE_ENDIAN).putLong(32, file.length);
        ElfImage image = ElfImage.parse(moved, "g");
        assertEquals(ElfImage.parse(file, "g").segments(), image.segments());
        byte[] torn = Arrays.copyOf(moved, moved.length - 1);
        assertTrue(refusal(torn).contains("lies outside the"), "one byte short");
    }
}
