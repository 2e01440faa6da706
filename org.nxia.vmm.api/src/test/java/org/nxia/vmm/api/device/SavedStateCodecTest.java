package org.nxia.vmm.api.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;

import org.junit.jupiter.api.Test;

class SavedStateCodecTest {

    private static byte[] sample() {
        return SavedStateCodec.writer("uart", 3).u8(0xab).bool(true).u16(0xfffe).i32(-2).i64(Long.MIN_VALUE + 7)
                .bytes(new byte[] {1, 2, 3}).toBytes();
    }

    @Test
    void fieldsReadBackInTheOrderWritten() {
        SavedStateCodec.Reader r = SavedStateCodec.reader(sample(), "uart", 3);
        assertEquals(0xab, r.u8());
        assertTrue(r.bool());
        assertEquals(0xfffe, r.u16());
        assertEquals(-2, r.i32());
        assertEquals(Long.MIN_VALUE + 7, r.i64());
        assertArrayEquals(new byte[] {1, 2, 3}, r.bytes(3));
        r.end();
    }

    @Test
    void anotherKindOrVersionIsRefused() {
        byte[] saved = sample();
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SavedStateCodec.reader(saved, "i8042", 3))
                .getMessage().contains("saved state of 'uart'"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SavedStateCodec.reader(saved, "uart", 2))
                .getMessage().contains("version 3"));
    }

    @Test
    void everyTruncationIsRefused() {
        byte[] saved = sample();
        for (int n = 0; n < saved.length; n++) {
            byte[] cut = Arrays.copyOf(saved, n);
            assertThrows(IllegalArgumentException.class, () -> {
                SavedStateCodec.Reader r = SavedStateCodec.reader(cut, "uart", 3);
                r.u8();
                r.bool();
                r.u16();
                r.i32();
                r.i64();
                r.bytes(3);
                r.end();
            }, "cut to " + n + " bytes");
        }
    }

    @Test
    void trailingBytesAnOversizedArrayAndANonBooleanAreRefused() {
        byte[] longer = Arrays.copyOf(sample(), sample().length + 1);
        SavedStateCodec.Reader r = SavedStateCodec.reader(longer, "uart", 3);
        r.u8();
        r.bool();
        r.u16();
        r.i32();
        r.i64();
        r.bytes(3);
        assertTrue(assertThrows(IllegalArgumentException.class, r::end).getMessage().contains("1 bytes follow"));

        SavedStateCodec.Reader small = SavedStateCodec.reader(sample(), "uart", 3);
        small.u8();
        small.bool();
        small.u16();
        small.i32();
        small.i64();
        assertThrows(IllegalArgumentException.class, () -> small.bytes(2), "3 bytes where 2 fit");

        byte[] two = SavedStateCodec.writer("uart", 1).u8(2).toBytes();
        assertThrows(IllegalArgumentException.class, () -> SavedStateCodec.reader(two, "uart", 1).bool());
        byte[] huge = SavedStateCodec.writer("uart", 1).i32(-1).toBytes();
        assertThrows(IllegalArgumentException.class, () -> SavedStateCodec.reader(huge, "uart", 1).bytes(16),
                "a negative (huge unsigned) length");
        assertThrows(IllegalArgumentException.class, () -> SavedStateCodec.reader(null, "uart", 1));
        assertThrows(IllegalArgumentException.class,
                () -> SavedStateCodec.reader(new byte[SavedStateCodec.MAX_BYTES + 1], "uart", 1));
        assertFalse(SavedStateCodec.reader(SavedStateCodec.writer("uart", 1).bool(false).toBytes(), "uart", 1).bool());
    }
}
