package org.nxia.examples.checksum;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;

import org.junit.jupiter.api.Test;

class ChecksumServiceTest {

    private static final byte[] CHECK = "123456789".getBytes(StandardCharsets.US_ASCII);

    /** The standard check values of each algorithm over "123456789" (the same the guest expects). */
    @Test
    void checkValuesFromHeapAndNativeSegments() {
        ChecksumService s = new ChecksumService();
        assertEquals(0xCBF43926L, s.crc32(MemorySegment.ofArray(CHECK)));
        assertEquals(0xE3069283L, s.crc32c(MemorySegment.ofArray(CHECK)));
        assertEquals(0x091E01DEL, s.adler32(MemorySegment.ofArray(CHECK)));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment inPlace = arena.allocate(CHECK.length).copyFrom(MemorySegment.ofArray(CHECK)).asReadOnly();
            assertEquals(0xCBF43926L, s.crc32(inPlace));
        }
        assertEquals(0L, s.crc32(MemorySegment.ofArray(new byte[0])));
    }
}
