package org.nxia.vmm.internal.acpi;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.internal.linux.LinuxBoot;

/**
 * The tables a Linux VM gets, loaded into ACPICA's interpreter (acpiexec),
 * the code Linux itself runs them with: it takes the FADT as hardware-reduced
 * and reads each device's _HID, _UID and decoded _CRS as LinuxBoot means
 * them. Byte-exactness is AcpiTablesIaslTest's; this is what the bytes mean.
 */
class AcpiExecTest {

    static final List<VirtioMmioDevice> DEVICES = List.of(new VirtioMmioDevice(0xd000_0000L, 0x1000, 5),
            new VirtioMmioDevice(0xd000_1000L, 0x1000, 16));

    @TempDir
    Path dir;

    /** acpiexec's output for {@code commands} with a 2-vCPU Linux VM's FADT, MADT and DSDT, its runs of blanks made one. */
    private String acpiexec(String commands) throws Exception {
        AcpiTables tables = LinuxBoot.acpiTables(2, DEVICES);
        Path fadt = Files.write(dir.resolve("facp.dat"), tables.table(tables.fadtAddress()));
        Path madt = Files.write(dir.resolve("apic.dat"), tables.table(tables.madtAddress()));
        Path dsdt = Files.write(dir.resolve("dsdt.dat"), tables.table(tables.dsdtAddress()));
        return Acpica.acpiexec(dir, commands, fadt, madt, dsdt).replaceAll("[ \\t]+", " ");
    }

    private static void assertSays(String output, String... lines) {
        for (String line : lines) {
            assertTrue(output.contains(line), () -> "acpiexec does not say '" + line + "':\n" + output);
        }
    }

    @Test
    void acpicaTakesOurFadtAsHardwareReducedAndOurMadt() throws Exception {
        String out = acpiexec("evaluate \\_SB.COM1._UID");
        assertSays(out, "ACPI: FACP", "(v06 NXIA NXIAFACP 00000001", "ACPI: APIC", "(v05 NXIA NXIAAPIC 00000001",
                "ACPI: DSDT", "(v02 NXIA NXIADSDT 00000001");
        // ACPICA sets up GPE blocks and the SCI only outside hardware-reduced mode
        assertFalse(out.contains("General Purpose Events"), out);
    }

    @Test
    void eachVirtioMmioDeviceIsLnro0005WithItsWindowAndEdgeHighGsi() throws Exception {
        for (int i = 0; i < DEVICES.size(); i++) {
            VirtioMmioDevice d = DEVICES.get(i);
            String device = "\\_SB.VR%02X".formatted(i);
            String out = acpiexec("evaluate %s._HID; evaluate %s._UID; resources %s".formatted(device, device, device));
            assertSays(out, "[String] Length 08 = \"LNRO0005\"", "[Integer] = %016X".formatted(i),
                    "32-Bit Fixed Memory Range Resource", "Write Protect : ReadWrite", "Address : %08X".formatted(d.base()),
                    "Address Length : %08X".formatted(d.size()),
                    "Extended IRQ Resource", "Type : ResourceConsumer", "Triggering : Edge", "Polarity : ActiveHigh",
                    "Sharing : Exclusive", "Interrupt Count : 01", "Dword00 : %08X".formatted(d.gsi()));
        }
    }

    @Test
    void com1AndTheKeyboardAreThePnpDevicesLinuxMatchesWithTheirPortsAndIsaIrqs() throws Exception {
        String com1 = acpiexec("evaluate \\_SB.COM1._HID; resources \\_SB.COM1");
        assertSays(com1, "[Integer] = 000000000105D041",   // EisaId ("PNP0501")
                "I/O Resource", "Address Decoding : Decode16", "Address Minimum : 03F8", "Address Maximum : 03F8", "Address Length : 08",
                "Triggering : Edge", "Polarity : ActiveHigh", "Dword00 : 00000004");
        String keyboard = acpiexec("evaluate \\_SB.PS2K._HID; resources \\_SB.PS2K");
        assertSays(keyboard, "[Integer] = 000000000303D041",   // EisaId ("PNP0303")
                "Address Minimum : 0060", "Address Minimum : 0064", "Address Length : 01", "Triggering : Edge", "Dword00 : 00000001");
    }
}
