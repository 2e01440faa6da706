package org.nxia.vmm.internal.micro;

import org.nxia.vmm.spi.GuestMemory;

/** Writes {@code struct nxia_boot} (docs/guest-abi.md, "Boot block"). */
public final class BootBlock {

    public static final int MAGIC = 0x4149_584e;  // "NXIA"
    public static final int VERSION = 1;
    public static final int FLAG_PVM = 1;
    public static final int OUTPUT_LEN = 80;
    public static final int MMIO_COUNT = 120;
    public static final int MMIO_BASES = 128;
    public static final int MAX_MMIO_WINDOWS = 32;
    public static final int PORTAL_COUNT = 384;
    public static final int PORTALS = 392;
    public static final int PORTAL_ENTRY = 48;
    public static final int MAX_PORTALS = 16;
    public static final int PORTAL_NAME = 16;
    public static final int PORTAL_MAPPED = 1;
    public static final int PORTAL_WRITABLE = 2;
    public static final int SIZE = PORTALS + MAX_PORTALS * PORTAL_ENTRY;

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

    /**
     * Writes portal table entry {@code index} (docs/guest-abi.md, "Portals");
     * the count becomes at least {@code index + 1}. The flags word is written
     * last so a polling guest sees a complete entry once MAPPED is set.
     */
    public static void writePortal(GuestMemory m, int index, String name, long gpa, long size, long doorbell, int flags) {
        if (index < 0 || index >= MAX_PORTALS) {
            throw new IllegalArgumentException("a micro-VM has room for " + MAX_PORTALS + " portals");
        }
        long e = MicroVmLayout.BOOT_BLOCK + PORTALS + (long) PORTAL_ENTRY * index;
        m.writeInt(e + 24, 0); // unmapped while it changes
        m.writeLong(e, gpa);
        m.writeLong(e + 8, size);
        m.writeLong(e + 16, doorbell);
        m.writeInt(e + 28, nameHash(name));
        byte[] bytes = name.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] padded = new byte[PORTAL_NAME];
        System.arraycopy(bytes, 0, padded, 0, Math.min(bytes.length, PORTAL_NAME - 1));
        m.write(e + 32, padded);
        long count = MicroVmLayout.BOOT_BLOCK + PORTAL_COUNT;
        if (m.readInt(count) < index + 1) {
            m.writeInt(count, index + 1);
        }
        java.lang.invoke.VarHandle.releaseFence();
        m.writeInt(e + 24, flags);
    }

    /** Marks portal table entry {@code index} unmapped. */
    public static void clearPortal(GuestMemory m, int index) {
        m.writeInt(MicroVmLayout.BOOT_BLOCK + PORTALS + (long) PORTAL_ENTRY * index + 24, 0);
    }

    /** FNV-1a (32 bit) of the name's UTF-8 bytes: what a guest compares to find a portal by name. */
    public static int nameHash(String name) {
        int h = 0x811c9dc5;
        for (byte b : name.getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xff)) * 0x01000193;
        }
        return h;
    }

    /** How many output bytes the guest says it wrote, clamped to the capacity (the guest may lie). */
    public static long outputLength(GuestMemory m, MicroVmLayout layout) {
        long claimed = m.readLong(MicroVmLayout.BOOT_BLOCK + OUTPUT_LEN);
        return claimed < 0 || claimed > layout.outputCap() ? layout.outputCap() : claimed;
    }
}
