package org.nxia.vmm.internal.acpi;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** The AML encodings at their boundaries (ACPI 6.3 §20.2), where a compiled table would show them only by chance. */
class AmlTest {

    private static byte[] bytes(int... values) {
        byte[] out = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = (byte) values[i];
        }
        return out;
    }

    @Test
    void aPackageLengthCountsItselfAndGrowsAtSixtyThreeFourKibAndOneMib() {
        assertArrayEquals(bytes(0x01), Aml.pkgLength(0));
        assertArrayEquals(bytes(0x3f), Aml.pkgLength(62), "63 in one byte");
        assertArrayEquals(bytes(0x41, 0x04), Aml.pkgLength(63), "65 = 0x41: two bytes, low nibble 1, then 0x04");
        assertArrayEquals(bytes(0x4f, 0xff), Aml.pkgLength(4093), "4095, the most two bytes hold");
        assertArrayEquals(bytes(0x81, 0x00, 0x01), Aml.pkgLength(4094), "4097 in three bytes");
        assertArrayEquals(bytes(0x8f, 0xff, 0xff), Aml.pkgLength((1 << 20) - 4));
        assertArrayEquals(bytes(0xc1, 0x00, 0x00, 0x01), Aml.pkgLength((1 << 20) - 3), "2^20 + 1 in four bytes");
        assertThrows(IllegalArgumentException.class, () -> Aml.pkgLength(Aml.MAX_PACKAGE - 3));
        assertThrows(IllegalArgumentException.class, () -> Aml.pkgLength(-1));
    }

    @Test
    void integersTakeTheShortestEncoding() {
        assertArrayEquals(bytes(0x00), Aml.integer(0));
        assertArrayEquals(bytes(0x01), Aml.integer(1));
        assertArrayEquals(bytes(0x0a, 0x02), Aml.integer(2));
        assertArrayEquals(bytes(0x0a, 0xff), Aml.integer(0xff));
        assertArrayEquals(bytes(0x0b, 0x00, 0x01), Aml.integer(0x100));
        assertArrayEquals(bytes(0x0c, 0x00, 0x00, 0x01, 0x00), Aml.integer(0x1_0000));
        assertArrayEquals(bytes(0x0c, 0xff, 0xff, 0xff, 0xff), Aml.integer(0xffff_ffffL));
        assertArrayEquals(bytes(0x0e, 0, 0, 0, 0, 1, 0, 0, 0), Aml.integer(1L << 32));
        assertArrayEquals(bytes(0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), Aml.integer(-1));
    }

    @Test
    void namesArePaddedChecked4CharacterSegments() {
        assertArrayEquals(bytes('_', 'S', 'B', '_'), Aml.nameString("_SB"));
        assertArrayEquals(bytes('\\', '_', 'S', 'B', '_'), Aml.nameString("\\_SB"));
        assertArrayEquals(bytes(0x2e, '_', 'S', 'B', '_', 'V', 'R', '0', '0'), Aml.nameString("_SB.VR00"));
        assertArrayEquals(bytes('\\', 0x2f, 3, '_', 'S', 'B', '_', 'A', '_', '_', '_', 'B', '_', '_', '_'), Aml.nameString("\\_SB.A.B"));
        for (String bad : new String[] {"", "VR000", "vr00", "0VR", "V-R", "_SB."}) {
            assertThrows(IllegalArgumentException.class, () -> Aml.nameString(bad), bad);
        }
    }

    @Test
    void stringsArePrintableAsciiNulTerminated() {
        assertArrayEquals(bytes(0x0d, 'L', 'N', 0), Aml.string("LN"));
        assertThrows(IllegalArgumentException.class, () -> Aml.string("a\nb"));
        assertThrows(IllegalArgumentException.class, () -> Aml.string("é"));
    }

    @Test
    void resourceDescriptorsRefuseWhatTheirFieldsCannotHold() {
        assertThrows(IllegalArgumentException.class, () -> ResourceTemplate.memory32Fixed(0xffff_f000L, 0x2000));
        assertThrows(IllegalArgumentException.class, () -> ResourceTemplate.memory32Fixed(0, 0));
        assertThrows(IllegalArgumentException.class, () -> ResourceTemplate.interrupt(-1, ResourceTemplate.Trigger.EDGE,
                ResourceTemplate.Polarity.ACTIVE_HIGH));
        assertArrayEquals(bytes(0x89, 6, 0, 0x05, 1, 9, 0, 0, 0),
                ResourceTemplate.interrupt(9, ResourceTemplate.Trigger.LEVEL, ResourceTemplate.Polarity.ACTIVE_LOW),
                "consumer, level, active low, exclusive");
    }
}
