package org.nxia.vmm.internal.linux;

/**
 * Where a Linux VM's boot structures, kernel and initramfs go in guest
 * memory (docs/linux-vm.md). Low memory holds the GDT, the zero page, the
 * boot page tables, the command line and the MP tables, all below 640 KiB,
 * and the ACPI tables at 896 KiB;
 * the kernel loads at its preferred address; the initramfs goes as high as
 * the kernel allows, never over the kernel's {@code init_size}.
 *
 * @param ramSize       guest RAM
 * @param kernelAddress where the protected-mode kernel is loaded
 * @param kernelEnd     kernelAddress + init_size: the kernel's own until it has set up memory
 * @param initrdAddress where the initramfs starts, 0 without one
 * @param initrdSize    its size in bytes
 */
public record LinuxLayout(long ramSize, long kernelAddress, long kernelEnd, long initrdAddress, long initrdSize) {

    public static final long PAGE = 4096;
    public static final long GDT = 0x500;
    public static final long ZERO_PAGE = 0x7000;
    public static final long PAGE_TABLES = 0x9000;
    public static final long CMDLINE = 0x20000;
    /** Room for the command line: the kernel's own limit (cmdline_size) is smaller. */
    public static final long CMDLINE_MAX = 0x10000;
    /** The EBDA, where the MP tables live: the last KiB below 640 KiB, one place Linux scans. */
    public static final long EBDA = 0x9fc00;
    public static final long LEGACY_HOLE = 0xa0000;
    /**
     * The ACPI tables (when the profile asks for them), RSDP first: in the
     * legacy hole e820 reserves, where a kernel also scans for the RSDP.
     */
    public static final long ACPI_TABLES = 0xe0000;
    public static final long ACPI_TABLES_MAX = 0x20000;
    public static final long HIGH_RAM = 0x100000;
    /** Virtio-mmio and other MMIO windows: above the largest RAM (3 GiB), below the APICs. */
    public static final long MMIO_BASE = 0xd000_0000L;
    public static final long MMIO_SIZE = 2L << 20;
    /**
     * Portal regions (virtio-pmem): above 4 GiB, so above RAM, every MMIO window
     * and the APICs, and in no e820 entry, so the kernel never takes them for RAM.
     */
    public static final long PORTAL_WINDOW = 1L << 32;
    public static final long PORTAL_WINDOW_SIZE = 64L << 30;
    /**
     * Each region starts on its own 128 MiB memory section: Linux's pmem driver
     * maps the range with memremap_pages, which wants at least 2 MiB alignment.
     */
    public static final long PORTAL_ALIGN = 128L << 20;

    /**
     * Plans where the kernel and initramfs go.
     *
     * @throws IllegalArgumentException when they do not fit, saying how much RAM they need
     */
    public static LinuxLayout plan(long ramSize, BzImage kernel, long initrdSize) {
        long load = kernel.prefAddress();
        long end = load + kernel.initSize();
        if (end > ramSize) {
            throw new IllegalArgumentException("the kernel needs RAM up to %d MiB (loaded at 0x%x, init_size %d MiB) but the VM has %d MiB: give it more memory"
                    .formatted(ceilMib(end), load, ceilMib(kernel.initSize()), ramSize >> 20));
        }
        if (initrdSize == 0) {
            return new LinuxLayout(ramSize, load, end, 0, 0);
        }
        long top = Math.min(ramSize, kernel.initrdAddrMax() + 1);
        long address = (top - initrdSize) & -PAGE;
        if (initrdSize > top || address < end) {
            throw new IllegalArgumentException("the initramfs (%d MiB) does not fit between the kernel's end (0x%x) and 0x%x: give the VM more memory"
                    .formatted(ceilMib(initrdSize), end, top));
        }
        return new LinuxLayout(ramSize, load, end, address, initrdSize);
    }

    private static long ceilMib(long bytes) {
        return (bytes + (1L << 20) - 1) >> 20;
    }
}
