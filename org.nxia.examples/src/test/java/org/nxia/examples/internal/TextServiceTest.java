package org.nxia.examples.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;

import org.junit.jupiter.api.Test;

class TextServiceTest {

    private final Text text = new TextService();

    @Test
    void upperChangesOnlyAsciiLowerCaseLetters() {
        assertEquals("HELLO FROM THE SYSTEM VM", text.upper("hello from the system vm"));
        assertEquals("AZ@[`{ éà 09", text.upper("az@[`{ éà 09"), "a-z only: the bytes around them and non-ASCII letters stay");
        assertEquals("", text.upper(""));
    }

    @Test
    void sha256IsTheStandardDigest() {
        assertEquals("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", text.sha256(MemorySegment.ofArray(new byte[0])));
        assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                text.sha256(MemorySegment.ofArray("abc".getBytes(StandardCharsets.US_ASCII)).asReadOnly()));
    }

    /** A referenced argument larger than the digest's chunk is read whole, its last partial chunk included. */
    @Test
    void sha256ReadsEveryChunkOfALargeSegment() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            long size = (3L << 20) + 12345;
            MemorySegment data = arena.allocate(size);
            for (long i = 0; i < size; i++) {
                data.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31 + (i >> 20)));
            }
            byte[] expected = MessageDigest.getInstance("SHA-256").digest(data.toArray(ValueLayout.JAVA_BYTE));
            assertEquals(HexFormat.of().formatHex(expected), text.sha256(data.asReadOnly()));
        }
    }
}
