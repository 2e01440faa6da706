package org.nxia.vmm.internal.acpi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * The ACPI descriptions' bounds at their last accepted value on each side, and the value just
 * past it refused with the record's own message: tables a guest's firmware code parses are only
 * as right as these checks.
 */
class AcpiBoundsTest {

    private static final long LAPIC = 0xfee0_0000L;
    private static final long IOAPIC = 0xfec0_0000L;

    private static void refused(String message, Executable e) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e);
        assertTrue(x.getMessage().contains(message), x.getMessage());
    }

    @Test
    void virtioMmioDevicesLieBelow4GiB() {
        assertEquals(0, new VirtioMmioDevice(0, 0x200, 0).base());
        assertEquals((1L << 32) - 0x200, new VirtioMmioDevice((1L << 32) - 0x200, 0x200, 5).base(), "ending at 4 GiB exactly");
        new VirtioMmioDevice(0, 1, 5);
        assertThrows(IllegalArgumentException.class, () -> new VirtioMmioDevice(-1, 0x200, 5));
        assertThrows(IllegalArgumentException.class, () -> new VirtioMmioDevice(0, 0, 5));
        assertThrows(IllegalArgumentException.class, () -> new VirtioMmioDevice((1L << 32) - 0x1ff, 0x200, 5));
        assertThrows(IllegalArgumentException.class, () -> new VirtioMmioDevice(0, 0x200, -1));
    }

    @Test
    void isaDevicesHaveIrq0To15AndOneTo255PortsBelow0x10000() {
        assertEquals(0, new IsaDevice("COM1", "PNP0501", List.of(), 0).irq());
        assertEquals(15, new IsaDevice("COM1", "PNP0501", List.of(), 15).irq());
        refused("IRQ is 0 to 15, not 16", () -> new IsaDevice("COM1", "PNP0501", List.of(), 16));
        refused("IRQ is 0 to 15, not -1", () -> new IsaDevice("COM1", "PNP0501", List.of(), -1));
        assertEquals(0, new IsaDevice.IoPorts(0, 1).base());
        assertEquals(0xff, new IsaDevice.IoPorts(0x100, 0xff).length());
        assertEquals(0xffff, new IsaDevice.IoPorts(0xffff, 1).base(), "the last port");
        for (int[] bad : new int[][] {{-1, 1}, {0, 0}, {0, 0x100}, {0xffff, 2}}) {
            refused("a range of 1 to 255 ports below 0x10000", () -> new IsaDevice.IoPorts(bad[0], bad[1]));
        }
    }

    @Test
    void overridesAndTemplatesTakeGsi0AndIsaIrq0To15() {
        assertEquals(0, new InterruptOverride(0, 0, 0).gsi());
        assertEquals(15, new InterruptOverride(15, 2, 0).isaIrq());
        assertThrows(IllegalArgumentException.class, () -> new InterruptOverride(16, 2, 0));
        assertThrows(IllegalArgumentException.class, () -> new InterruptOverride(-1, 2, 0));
        assertThrows(IllegalArgumentException.class, () -> new InterruptOverride(0, -1, 0));
        ResourceTemplate.interrupt(0, ResourceTemplate.Trigger.EDGE, ResourceTemplate.Polarity.ACTIVE_HIGH);
        refused("a GSI is not negative", () -> ResourceTemplate.interrupt(-1, ResourceTemplate.Trigger.EDGE, ResourceTemplate.Polarity.ACTIVE_HIGH));
        ResourceTemplate.memory32Fixed(0, 1);
        ResourceTemplate.memory32Fixed((1L << 32) - 0x1000, 0x1000);
        refused("below 4 GiB", () -> ResourceTemplate.memory32Fixed(-1, 0x1000));
        refused("below 4 GiB", () -> ResourceTemplate.memory32Fixed(0, 0));
        refused("below 4 GiB", () -> ResourceTemplate.memory32Fixed((1L << 32) - 0xfff, 0x1000));
    }

    @Test
    void thePlatformsPinsIdsAndAddresses() {
        new AcpiPlatform(1, LAPIC, IOAPIC, 1, 1, List.of(), List.of(), List.of());
        new AcpiPlatform(1, LAPIC, IOAPIC, 255, 240, List.of(), List.of(), List.of());
        new AcpiPlatform(1, 0, (1L << 32) - 1, 1, 24, List.of(), List.of(), List.of());
        refused("an IO-APIC has 1 to 240 pins, not 241", () -> new AcpiPlatform(1, LAPIC, IOAPIC, 1, 241, List.of(), List.of(), List.of()));
        refused("an IO-APIC has 1 to 240 pins, not 0", () -> new AcpiPlatform(1, LAPIC, IOAPIC, 1, 0, List.of(), List.of(), List.of()));
        refused("APIC addresses lie below 4 GiB: 0xffffffffffffffff", () -> new AcpiPlatform(1, -1, IOAPIC, 1, 24, List.of(), List.of(), List.of()));
        refused("APIC addresses lie below 4 GiB: 0x100000000", () -> new AcpiPlatform(1, LAPIC, 1L << 32, 1, 24, List.of(), List.of(), List.of()));
        refused("IO-APIC id 1: between the CPUs' ids (0 to 1) and 255",
                () -> new AcpiPlatform(2, LAPIC, IOAPIC, 1, 24, List.of(), List.of(), List.of()));
        refused("two interrupt source overrides for ISA IRQ 0", () -> new AcpiPlatform(1, LAPIC, IOAPIC, 1, 24,
                List.of(new InterruptOverride(0, 2, 0), new InterruptOverride(0, 3, 0)), List.of(), List.of()));
        new AcpiPlatform(1, LAPIC, IOAPIC, 1, 24, List.of(new InterruptOverride(0, 2, 0), new InterruptOverride(9, 9, 0)), List.of(), List.of());
        refused("pins 0 to 23", () -> new AcpiPlatform(1, LAPIC, IOAPIC, 1, 24, List.of(), List.of(),
                List.of(new VirtioMmioDevice(0xd000_0000L, 0x200, 24))));
    }
}
