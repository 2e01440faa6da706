package org.nxia.vmm.internal.acpi;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Collections;
import java.util.List;

import org.junit.jupiter.api.Test;

/** The AML encoder and the table assembly at their edges: each limit's last accepted value, and byte-exact encodings. */
class AmlEdgesTest {

    @Test
    void aPackageCountsItsElementsInOneByte() {
        // Package (0x02) { 0x05, Zero }: PackageOp, PkgLength 5 (itself, the count, 0A 05, 00), NumElements 2
        assertArrayEquals(new byte[] {0x12, 0x05, 0x02, 0x0a, 0x05, 0x00}, Aml.pack(Aml.integer(5), Aml.integer(0)));
        byte[][] most = new byte[255][];
        java.util.Arrays.fill(most, Aml.integer(0));
        assertEquals((byte) 255, Aml.pack(most)[3], "255 elements: the count after a two-byte PkgLength");
        byte[][] tooMany = new byte[256][];
        java.util.Arrays.fill(tooMany, Aml.integer(0));
        assertThrows(IllegalArgumentException.class, () -> Aml.pack(tooMany));
    }

    @Test
    void anEisaIdPacksAsTheSpecificationSays() {
        // "PNP0501" compresses to 0x0105D041 (three 5-bit letters, then the product), stored little-endian
        assertArrayEquals(new byte[] {0x0c, 0x41, (byte) 0xd0, 0x05, 0x01}, Aml.eisaId("PNP0501"));
        // A=1, B=2, A=1: vendor 0x0441; no letter overlaps another here, so a wrong offset for any of them shows
        assertArrayEquals(new byte[] {0x0c, 0x04, 0x41, 0x12, 0x34}, Aml.eisaId("ABA1234"));
    }

    @Test
    void integersTakeTheirShortestEncodingUpToEachPrefixsLimit() {
        assertEquals(2, Aml.integer(0xff).length, "a byte");
        assertEquals(3, Aml.integer(0x100).length);
        assertEquals(3, Aml.integer(0xffff).length, "a word");
        assertEquals(5, Aml.integer(0x1_0000).length);
        assertEquals(5, Aml.integer(0xffff_ffffL).length, "a dword");
        assertEquals(9, Aml.integer(0x1_0000_0000L).length);
    }

    @Test
    void stringsArePrintableAsciiFromSpaceToTilde() {
        assertArrayEquals(new byte[] {0x0d, ' ', '~', 0}, Aml.string(" ~"));
        assertThrows(IllegalArgumentException.class, () -> Aml.string("\u001f"));
        assertThrows(IllegalArgumentException.class, () -> Aml.string("\u007f"));
    }

    @Test
    void limitsOfPackagesAndNamePaths() {
        assertEquals(4, Aml.pkgLength(Aml.MAX_PACKAGE - 4).length, "the largest package");
        assertThrows(IllegalArgumentException.class, () -> Aml.pkgLength(Aml.MAX_PACKAGE - 3));
        String longest = String.join(".", Collections.nCopies(255, "ABCD"));
        assertEquals(2 + 255 * 4, Aml.nameString(longest).length, "MultiNamePrefix, a count and 255 segments");
        assertThrows(IllegalArgumentException.class, () -> Aml.nameString(longest + ".ABCD"));
    }

    @Test
    void aChecksumSumsExactlyTheRangeItIsGiven() {
        byte[] bytes = {1, 2, 3};
        assertEquals(6, SystemDescriptionTable.sum(bytes, 0, 3), "the whole array");
        assertThrows(IndexOutOfBoundsException.class, () -> SystemDescriptionTable.sum(bytes, 1, 3));
        assertThrows(IndexOutOfBoundsException.class, () -> SystemDescriptionTable.sum(bytes, 0, 4));
    }

    /** Tables at address 0, interrupt overrides in the MADT, and each table where the one before it ends, 16-byte aligned. */
    @Test
    void tablesLieBackToBackAndTheMadtHoldsItsOverrides() {
        AcpiPlatform p = new AcpiPlatform(1, 0xfee0_0000L, 0xfec0_0000L, 1, 24, List.of(new InterruptOverride(0, 2, 0)),
                List.of(), List.of());
        AcpiTables t = AcpiTables.build(0, p);
        byte[] madt = t.table(t.madtAddress());
        // header 36, then the local APIC address and flags 8, one local APIC 8, the IO-APIC 12, one override 10, the NMI 6
        assertEquals(36 + 8 + 8 + 12 + 10 + 6, madt.length);
        assertEquals(t.madtAddress() + 80, t.dsdtAddress(), "an 80-byte MADT: the DSDT follows at once");
        assertEquals(0, t.address());
        byte[] dsdt = t.table(t.dsdtAddress());
        assertArrayEquals(dsdt, t.table(t.dsdtAddress(), t.bytes().length - (int) t.dsdtAddress()), "the last table, to the last byte");
        assertThrows(IndexOutOfBoundsException.class, () -> t.table(t.dsdtAddress(), t.bytes().length - (int) t.dsdtAddress() + 1));
        assertArrayEquals(new byte[0], t.table(t.dsdtAddress(), 0));
    }
}
