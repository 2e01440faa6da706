package org.nxia.vmm.internal.micro;

import org.nxia.vmm.internal.image.GuestImageException;

/**
 * Where everything lives in a micro-VM's guest-physical memory
 * (docs/guest-abi.md, "Guest-physical memory map"). Planned once per VM from
 * the RAM size, the image's end and the I/O buffer sizes; {@link #plan}
 * refuses a plan that does not fit.
 */
public record MicroVmLayout(long ramSize, long imageEnd, long inputGpa, long inputLen, long outputGpa,
                            long outputCap, long heapGpa, long heapSize, long stackTop, long pageTablesBase) {

    public static final long PAGE = 4096;
    public static final long BOOT_BLOCK = 0x1000;
    public static final long PVCS = 0x2000;
    public static final long GDT = 0x3000;
    public static final long TSS = 0x3800;
    public static final long CONSOLE = 0x8000;
    public static final int CONSOLE_CAP = 0x8000;
    public static final long STACK_SIZE = 64 * 1024;
    public static final long MMIO_WINDOW = 0xd000_0000L;
    public static final long MMIO_WINDOW_SIZE = 2L << 20;
    /** Portal regions (shared memory slots) are mapped here, each at a 2 MiB boundary. */
    public static final long PORTAL_WINDOW = 0xc000_0000L;
    public static final long PORTAL_WINDOW_SIZE = 256L << 20;
    public static final long PORTAL_ALIGN = 2L << 20;

    /**
     * Plans the map.
     *
     * @throws GuestImageException when image, buffers, stack and page tables do not fit in {@code ramSize}
     */
    public static MicroVmLayout plan(long ramSize, long imageEnd, long inputLen, long outputCap) {
        if (imageEnd < 0 || imageEnd > ramSize || inputLen < 0 || inputLen > ramSize || outputCap < 0 || outputCap > ramSize) {
            throw new GuestImageException("the image (up to 0x%x), input (%d bytes) and output (%d bytes) cannot fit in %d KiB of RAM: give it more memory"
                    .formatted(imageEnd, inputLen, outputCap, ramSize / 1024));
        }
        long tables = PageTables.sizeFor(ramSize);
        long pageTablesBase = ramSize - tables;
        long stackTop = pageTablesBase;
        long stackBottom = stackTop - STACK_SIZE;
        long inputGpa = alignUp(imageEnd);
        long outputGpa = alignUp(inputGpa + inputLen);
        long heapGpa = alignUp(outputGpa + outputCap);
        if (heapGpa > stackBottom) {
            long need = heapGpa + STACK_SIZE + tables;
            throw new GuestImageException("the image (up to 0x%x), input (%d bytes), output (%d bytes), stack and page tables need %d KiB but the VM has %d KiB: give it more memory"
                    .formatted(imageEnd, inputLen, outputCap, (need + 1023) / 1024, ramSize / 1024));
        }
        return new MicroVmLayout(ramSize, imageEnd, inputGpa, inputLen, outputGpa, outputCap, heapGpa,
                stackBottom - heapGpa, stackTop, pageTablesBase);
    }

    /** Where images may be loaded: from 0x100000 up to the stack's bottom. */
    public long imageLimit() {
        return stackTop - STACK_SIZE;
    }

    static long alignUp(long value) {
        return (value + PAGE - 1) & -PAGE;
    }
}
