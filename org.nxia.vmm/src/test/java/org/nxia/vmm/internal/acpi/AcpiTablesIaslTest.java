package org.nxia.vmm.internal.acpi;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Java-built tables byte for byte against iasl's output for the ASL and
 * data-table sources in src/test/resources/acpi, which describe the same
 * machine: 2 vCPUs, the IO-APIC, one override, COM1 and the keyboard, three virtio-mmio devices, a VMBus,
 * the tables from 0xE0000. iasl writes its own creator id and revision
 * ("INTL", its version) into every table it compiles; the test sets them
 * to the Java table's (NXIA, 1) and recomputes iasl's checksum, so the
 * comparison covers every byte, the checksum included.
 */
class AcpiTablesIaslTest {

    static final long BASE = 0xe0000;
    static final AcpiPlatform PLATFORM = new AcpiPlatform(2, 0xfee0_0000L, 0xfec0_0000L, 2, 24,
            List.of(new InterruptOverride(9, 9, InterruptOverride.ACTIVE_HIGH | InterruptOverride.LEVEL)),
            List.of(new IsaDevice("COM1", "PNP0501", List.of(new IsaDevice.IoPorts(0x3f8, 8)), 4),
                    new IsaDevice("PS2K", "PNP0303", List.of(new IsaDevice.IoPorts(0x60, 1), new IsaDevice.IoPorts(0x64, 1)), 1)),
            List.of(new VirtioMmioDevice(0xd000_0000L, 0x1000, 5), new VirtioMmioDevice(0xd000_1000L, 0x1000, 6),
                    new VirtioMmioDevice(0xd000_2000L, 0x1000, 16)), true);
    static final AcpiTables TABLES = AcpiTables.build(BASE, PLATFORM);

    @TempDir
    Path dir;

    @Test
    void theDsdtIsWhatIaslCompilesFromTheAsl() throws Exception {
        assertSameTable(Acpica.compileResource("dsdt.asl", dir), TABLES.table(TABLES.dsdtAddress()));
    }

    @Test
    void theFadtIsWhatIaslCompilesFromItsSource() throws Exception {
        assertEquals(0xe01f0, TABLES.dsdtAddress(), "the address facp.dsl names as X_DSDT");
        assertSameTable(Acpica.compileResource("facp.dsl", dir), TABLES.table(TABLES.fadtAddress()));
    }

    @Test
    void theMadtIsWhatIaslCompilesFromItsSource() throws Exception {
        assertSameTable(Acpica.compileResource("apic.dsl", dir), TABLES.table(TABLES.madtAddress()));
    }

    @Test
    void theXsdtIsWhatIaslCompilesFromItsSource() throws Exception {
        assertEquals(List.of(0xe0070L, 0xe0190L), List.of(TABLES.fadtAddress(), TABLES.madtAddress()), "the addresses xsdt.dsl lists");
        assertSameTable(Acpica.compileResource("xsdt.dsl", dir), TABLES.table(TABLES.xsdtAddress()));
    }

    @Test
    void theRsdpIsWhatIaslCompilesFromItsSource() throws Exception {
        assertEquals(0xe0030, TABLES.xsdtAddress(), "the address rsdp.dsl names");
        // no creator fields in an RSDP: iasl's bytes, both checksums included, are the expectation as they are
        assertEquals(hex(Acpica.compileResource("rsdp.dsl", dir)), hex(TABLES.table(TABLES.rsdpAddress(), AcpiTables.RSDP_SIZE)));
    }

    /**
     * iasl -d takes every table the Java builder writes without a complaint,
     * and compiling what it wrote gives the same bytes back. (iasl cannot
     * disassemble a lone RSDP; the RSDP test above compares it.)
     */
    @Test
    void iaslDisassemblesEveryTableAndItsSourceCompilesToTheSameBytes() throws Exception {
        for (long address : List.of(TABLES.xsdtAddress(), TABLES.fadtAddress(), TABLES.madtAddress(), TABLES.dsdtAddress())) {
            byte[] table = TABLES.table(address);
            String signature = new String(table, 0, 4, java.nio.charset.StandardCharsets.US_ASCII);
            Path binary = Files.write(dir.resolve(signature.toLowerCase() + ".dat"), table);
            Path source = Acpica.disassemble(binary);
            assertSameTable(Acpica.compile(source), table);
        }
    }

    @Test
    void aDsdtWithManyDevicesNeedsALongerPackageLengthAndStillMatchesIasl() throws Exception {
        // 80 devices: the scope passes 4 KiB, so its PkgLength takes three bytes
        List<VirtioMmioDevice> devices = java.util.stream.IntStream.range(0, 80)
                .mapToObj(i -> new VirtioMmioDevice(0xd000_0000L + i * 0x200L, 0x200, 16 + i % 8)).toList();
        StringBuilder asl = new StringBuilder("DefinitionBlock (\"\", \"DSDT\", 2, \"NXIA  \", \"NXIADSDT\", 1)\n{\n    Scope (\\_SB)\n    {\n");
        for (int i = 0; i < devices.size(); i++) {
            VirtioMmioDevice d = devices.get(i);
            asl.append("""
                            Device (VR%02X)
                            {
                                Name (_HID, "LNRO0005")
                                Name (_UID, %d)
                                Name (_CRS, ResourceTemplate ()
                                {
                                    Memory32Fixed (ReadWrite, 0x%08X, 0x%08X)
                                    Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { %d }
                                })
                            }
                    """.formatted(i, i, d.base(), d.size(), d.gsi()));
        }
        asl.append("    }\n    Name (_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })\n}\n");
        byte[] dsdt = AcpiTables.dsdt(List.of(), devices, false);
        assertEquals(true, dsdt.length > 4096, "the test's point: a scope over 4 KiB");
        assertSameTable(Acpica.compile(Files.writeString(dir.resolve("many.asl"), asl)), dsdt);
    }

    /** {@code fromIasl} with the Java table's creator id and revision and its checksum redone, equal to {@code built}. */
    static void assertSameTable(byte[] fromIasl, byte[] built) {
        byte[] expected = fromIasl.clone();
        assertEquals(true, expected.length >= SystemDescriptionTable.HEADER_SIZE, "iasl wrote a whole header");
        System.arraycopy(built, SystemDescriptionTable.CREATOR_ID, expected, SystemDescriptionTable.CREATOR_ID, 8);
        expected[SystemDescriptionTable.CHECKSUM] = 0;
        expected[SystemDescriptionTable.CHECKSUM] = SystemDescriptionTable.checksum(expected, 0, expected.length);
        assertEquals(0, SystemDescriptionTable.sum(built, 0, built.length), "the built table's checksum");
        assertEquals(hex(expected), hex(built), new String(built, 0, 4, java.nio.charset.StandardCharsets.US_ASCII));
        assertArrayEquals(expected, built);
    }

    /** Hex, 16 bytes a line: a mismatch shows where. */
    static String hex(byte[] bytes) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < bytes.length; i += 16) {
            out.append("%04x: ".formatted(i)).append(HexFormat.ofDelimiter(" ").formatHex(bytes, i, Math.min(bytes.length, i + 16))).append('\n');
        }
        return out.toString();
    }
}
