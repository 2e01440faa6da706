package org.nxia.vmm.internal.acpi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import org.junit.jupiter.api.Test;

/** What the tables can describe: refused with a reason before a byte is written. */
class AcpiPlatformTest {

    private static final long LAPIC = 0xfee0_0000L;
    private static final long IOAPIC = 0xfec0_0000L;

    private static AcpiPlatform platform(int cpus, int ioApicId, List<InterruptOverride> overrides, List<VirtioMmioDevice> devices) {
        return new AcpiPlatform(cpus, LAPIC, IOAPIC, ioApicId, 24, overrides, List.of(), devices);
    }

    @Test
    void cpusAndTheIoApicIdShareTheApicIdSpace() {
        assertEquals(255, platform(255, 255, List.of(), List.of()).cpus());
        assertThrows(IllegalArgumentException.class, () -> platform(0, 1, List.of(), List.of()));
        assertThrows(IllegalArgumentException.class, () -> platform(256, 256, List.of(), List.of()));
        assertThrows(IllegalArgumentException.class, () -> platform(2, 1, List.of(), List.of()), "an IO-APIC id a CPU has");
        assertThrows(IllegalArgumentException.class, () -> new AcpiPlatform(1, 1L << 32, IOAPIC, 1, 24, List.of(), List.of(), List.of()));
        assertThrows(IllegalArgumentException.class, () -> new AcpiPlatform(1, LAPIC, IOAPIC, 1, 0, List.of(), List.of(), List.of()));
    }

    @Test
    void linesMustBeIoApicPinsAndOverridesOnePerIsaIrq() {
        VirtioMmioDevice onPin24 = new VirtioMmioDevice(0xd000_0000L, 0x1000, 24);
        assertThrows(IllegalArgumentException.class, () -> platform(1, 1, List.of(), List.of(onPin24)));
        InterruptOverride timer = new InterruptOverride(0, 2, InterruptOverride.CONFORMS);
        assertThrows(IllegalArgumentException.class, () -> platform(1, 1, List.of(timer, timer), List.of()));
        assertThrows(IllegalArgumentException.class, () -> platform(1, 1, List.of(new InterruptOverride(0, 24, 0)), List.of()));
        assertThrows(IllegalArgumentException.class, () -> new InterruptOverride(16, 16, 0));
        assertThrows(IllegalArgumentException.class, () -> new InterruptOverride(0, 2, 2), "polarity 2 is reserved");
        assertThrows(IllegalArgumentException.class, () -> new InterruptOverride(0, 2, 8), "trigger 2 is reserved");
        assertThrows(IllegalArgumentException.class, () -> new VirtioMmioDevice(0xffff_f000L, 0x2000, 5));
    }

    @Test
    void isaDevicesHaveIsaIrqsPortsBelow64KiBAndNamesOfTheirOwn() {
        IsaDevice com1 = new IsaDevice("COM1", "PNP0501", List.of(new IsaDevice.IoPorts(0x3f8, 8)), 4);
        assertThrows(IllegalArgumentException.class, () -> new IsaDevice("COM1", "PNP0501", List.of(), 16));
        assertThrows(IllegalArgumentException.class, () -> new IsaDevice("COM1", "pnp0501", List.of(), 4));
        assertThrows(IllegalArgumentException.class, () -> new IsaDevice("COM12", "PNP0501", List.of(), 4));
        assertThrows(IllegalArgumentException.class, () -> new IsaDevice.IoPorts(0xfffc, 8));
        assertThrows(IllegalArgumentException.class, () -> new IsaDevice.IoPorts(0x60, 0));
        assertThrows(IllegalArgumentException.class, () -> new AcpiPlatform(1, LAPIC, IOAPIC, 1, 24, List.of(), List.of(com1, com1), List.of()));
        IsaDevice vr00 = new IsaDevice("VR00", "PNP0501", List.of(), 4);
        assertThrows(IllegalArgumentException.class, () -> new AcpiPlatform(1, LAPIC, IOAPIC, 1, 24, List.of(), List.of(vr00), List.of()),
                "the virtio-mmio devices' names");
        assertThrows(IllegalArgumentException.class, () -> new AcpiPlatform(1, LAPIC, IOAPIC, 1, 4, List.of(), List.of(com1), List.of()),
                "IRQ 4 on an IO-APIC with pins 0 to 3");
    }

    @Test
    void theDsdtNamesAtMost256Devices() {
        List<VirtioMmioDevice> devices = new ArrayList<>(Collections.nCopies(AcpiPlatform.MAX_DEVICES, new VirtioMmioDevice(0xd000_0000L, 0x200, 16)));
        AcpiTables tables = AcpiTables.build(0xe0000, platform(1, 1, List.of(), devices));
        byte[] dsdt = tables.table(tables.dsdtAddress());
        assertEquals(0, SystemDescriptionTable.sum(dsdt, 0, dsdt.length));
        devices.add(devices.getFirst());
        assertThrows(IllegalArgumentException.class, () -> platform(1, 1, List.of(), devices));
    }

    @Test
    void theTablesStartOn16BytesAndATableReadStaysInside() {
        AcpiPlatform p = platform(1, 1, List.of(), List.of());
        assertThrows(IllegalArgumentException.class, () -> AcpiTables.build(0xe0008, p));
        AcpiTables tables = AcpiTables.build(0xe0000, p);
        assertEquals(tables.address() + tables.bytes().length, tables.dsdtAddress() + tables.table(tables.dsdtAddress()).length,
                "the DSDT ends the tables");
        assertThrows(IndexOutOfBoundsException.class, () -> tables.table(tables.dsdtAddress(), tables.bytes().length));
        assertThrows(IndexOutOfBoundsException.class, () -> tables.table(0xdfff0, 16));
        assertThrows(IndexOutOfBoundsException.class, () -> tables.table(tables.address() + tables.bytes().length - 8));
        tables.bytes()[0] = 0;
        assertEquals('R', tables.bytes()[0], "bytes() hands out a copy");
        for (long at : List.of(tables.rsdpAddress(), tables.xsdtAddress(), tables.fadtAddress(), tables.madtAddress(), tables.dsdtAddress())) {
            assertEquals(0, at % AcpiTables.ALIGN, "0x" + Long.toHexString(at));
        }
    }
}
