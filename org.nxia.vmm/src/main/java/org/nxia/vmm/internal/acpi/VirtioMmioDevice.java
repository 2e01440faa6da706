package org.nxia.vmm.internal.acpi;

/**
 * A virtio-mmio device as the DSDT describes it: its register window and
 * the GSI it pulses (edge-triggered, active high: VirtioMmioTransport raises
 * and drops its line once per interrupt).
 *
 * @param base the window's guest-physical address, below 4 GiB
 * @param size the window's size in bytes
 * @param gsi  its interrupt line
 */
public record VirtioMmioDevice(long base, long size, int gsi) {

    public VirtioMmioDevice {
        if (base < 0 || size <= 0 || base + size > 1L << 32) {
            throw new IllegalArgumentException("a virtio-mmio window lies below 4 GiB: 0x%x + 0x%x".formatted(base, size));
        }
        if (gsi < 0) {
            throw new IllegalArgumentException("a GSI is not negative: " + gsi);
        }
    }
}
