package org.nxia.vmm.internal.acpi;

import java.util.List;

/**
 * A legacy ISA device the DSDT names, so that a kernel in hardware-reduced
 * ACPI mode, which sets up no ISA IRQs by itself, routes its interrupt: an
 * EISA id as _HID, its I/O port ranges and its IRQ (edge-triggered, active
 * high, as on the ISA bus and in the MP table).
 *
 * @param name   the ACPI name, 1 to 4 characters
 * @param eisaId its _HID, e.g. PNP0501 (a 16550)
 * @param ports  its I/O port ranges
 * @param irq    its ISA IRQ, 0 to 15
 */
public record IsaDevice(String name, String eisaId, List<IoPorts> ports, int irq) {

    /** I/O ports {@code [base, base + length)}. */
    public record IoPorts(int base, int length) {
        public IoPorts {
            if (base < 0 || length < 1 || length > 0xff || base + length > 0x1_0000) {
                throw new IllegalArgumentException("I/O ports 0x%x + %d: a range of 1 to 255 ports below 0x10000".formatted(base, length));
            }
        }
    }

    public IsaDevice {
        ports = List.copyOf(ports);
        Aml.nameSeg(name);
        Aml.eisaId(eisaId);
        if (irq < 0 || irq > 15) {
            throw new IllegalArgumentException("an ISA device's IRQ is 0 to 15, not " + irq);
        }
    }
}
