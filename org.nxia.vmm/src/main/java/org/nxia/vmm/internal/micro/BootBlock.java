package org.nxia.vmm.internal.micro;

import org.nxia.vmm.api.GuestMemory;

/** Writes {@code struct nxia_boot} (docs/guest-abi.md, "Boot block"). */
public final class BootBlock {

    public static final int MAGIC = 0x4149_584e;  // "NXIA"
    public static final int VERSION = 1;
    public static final int FLAG_PVM = 1;
    public static final int OUTPUT_LEN = 80;
    public static final int MMIO_COUNT = 120;
    public static final int MMIO_BASES = 128;
    public static final int MAX_MMIO_WINDOWS = 32;
    public static final int SIZE = 384;

    private BootBlock() {
    }

    /**
     * @param pvmControlMsr the MSR the guest writes with the PVCS address to run natively, 0 for none
     */
    public static void write(GuestMemory m, MicroVmLayout layout, int pvmControlMsr, long arg) {
        long b = MicroVmLayout.BOOT_BLOCK;
        m.slice(b, MicroVmLayout.PAGE).fill((byte) 0);
        m.writeInt(b, MAGIC);
        m.writeShort(b + 4, (short) VERSION);
        m.writeShort(b + 6, (short) (pvmControlMsr != 0 ? FLAG_PVM : 0));
        m.writeInt(b + 8, pvmControlMsr);
        m.writeInt(b + 12, 0);
        m.writeLong(b + 16, pvmControlMsr != 0 ? MicroVmLayout.PVCS : 0);
        m.writeLong(b + 24, layout.ramSize());
        m.writeLong(b + 32, MicroVmLayout.CONSOLE);
        m.writeInt(b + 40, MicroVmLayout.CONSOLE_CAP);
        m.writeLong(b + 48, layout.inputGpa());
        m.writeLong(b + 56, layout.inputLen());
        m.writeLong(b + 64, layout.outputGpa());
        m.writeLong(b + 72, layout.outputCap());
        m.writeLong(b + OUTPUT_LEN, 0);
        m.writeLong(b + 88, layout.heapGpa());
        m.writeLong(b + 96, layout.heapSize());
        m.writeLong(b + 104, layout.stackTop());
        m.writeLong(b + 112, arg);
    }

    /** Lists the devices' MMIO windows for the guest, in profile order. */
    public static void writeMmioTable(GuestMemory m, java.util.List<Long> bases) {
        if (bases.size() > MAX_MMIO_WINDOWS) {
            throw new IllegalArgumentException("a micro-VM has room for " + MAX_MMIO_WINDOWS + " MMIO devices, not " + bases.size());
        }
        long b = MicroVmLayout.BOOT_BLOCK;
        m.writeInt(b + MMIO_COUNT, bases.size());
        for (int i = 0; i < bases.size(); i++) {
            m.writeLong(b + MMIO_BASES + 8L * i, bases.get(i));
        }
    }

    /** How many output bytes the guest says it wrote, clamped to the capacity (the guest may lie). */
    public static long outputLength(GuestMemory m, MicroVmLayout layout) {
        long claimed = m.readLong(MicroVmLayout.BOOT_BLOCK + OUTPUT_LEN);
        return claimed < 0 || claimed > layout.outputCap() ? layout.outputCap() : claimed;
    }
}
