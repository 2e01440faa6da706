package org.nxia.vmm.internal.acpi;

/**
 * A MADT interrupt source override: ISA IRQ {@code isaIrq} reaches
 * {@code gsi} with the given MPS INTI flags. An ISA IRQ without one is
 * identity-mapped, edge-triggered and active high (ACPI 6.3 §5.2.12.5).
 *
 * @param isaIrq 0 to 15
 * @param gsi    the global system interrupt it is wired to
 * @param flags  polarity (bits 0-1) and trigger mode (bits 2-3), {@link #CONFORMS} for the bus's own
 */
public record InterruptOverride(int isaIrq, int gsi, int flags) {

    public static final int CONFORMS = 0;
    public static final int ACTIVE_HIGH = 1;
    public static final int ACTIVE_LOW = 3;
    public static final int EDGE = 1 << 2;
    public static final int LEVEL = 3 << 2;

    public InterruptOverride {
        if (isaIrq < 0 || isaIrq > 15) {
            throw new IllegalArgumentException("an interrupt source override is for ISA IRQ 0 to 15, not " + isaIrq);
        }
        if (gsi < 0) {
            throw new IllegalArgumentException("a GSI is not negative: " + gsi);
        }
        if ((flags & ~0xf) != 0 || (flags & 3) == 2 || (flags & 0xc) == 8) {
            throw new IllegalArgumentException("MPS INTI flags 0x%x: polarity and trigger are 0, 1 or 3 each".formatted(flags));
        }
    }
}
