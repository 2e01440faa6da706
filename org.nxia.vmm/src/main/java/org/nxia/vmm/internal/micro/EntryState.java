package org.nxia.vmm.internal.micro;

import org.nxia.vmm.spi.DescriptorTable;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.Segment;
import org.nxia.vmm.spi.SpecialRegisters;

/**
 * The GDT, TSS and register state a micro-VM starts in: 64-bit long mode,
 * paging on, lower-half addresses only, so the same state is valid at CPL 0
 * on hardware KVM and converts to native PVM mode (docs/guest-abi.md, "Entry
 * state").
 */
public final class EntryState {

    public static final int CODE_SELECTOR = 0x10;
    public static final int DATA_SELECTOR = 0x18;
    public static final int TSS_SELECTOR = 0x20;
    static final int GDT_ENTRIES = 6;

    public static final long CR0 = 0x8005_0033L;  // PG | AM | WP | NE | ET | MP | PE
    public static final long CR4 = 0x20;          // PAE only (PVM refuses PCIDE; no OSFXSR: guests use no SSE)
    public static final long EFER = 0xd01;        // NXE | LMA | LME | SCE

    private static final int TYPE_CODE_EXEC_READ_ACCESSED = 11;
    private static final int TYPE_DATA_READ_WRITE_ACCESSED = 3;
    private static final int TYPE_TSS64_BUSY = 11;
    private static final int TYPE_LDT = 2;
    private static final int TSS_LIMIT = 0x67;

    private EntryState() {
    }

    /** Writes the GDT at {@link MicroVmLayout#GDT} and an empty 64-bit TSS at {@link MicroVmLayout#TSS}. */
    public static void writeGdt(GuestMemory memory) {
        long gdt = MicroVmLayout.GDT;
        memory.slice(gdt, MicroVmLayout.PAGE).fill((byte) 0);
        memory.writeLong(gdt + CODE_SELECTOR, 0x00af_9b00_0000_ffffL);  // P, DPL 0, S, exec/read/accessed, L, G
        memory.writeLong(gdt + DATA_SELECTOR, 0x00cf_9300_0000_ffffL);  // P, DPL 0, S, read/write/accessed, DB, G
        long base = MicroVmLayout.TSS;
        long low = (TSS_LIMIT & 0xffffL) | ((base & 0xff_ffffL) << 16) | ((long) TYPE_TSS64_BUSY << 40)
                | (1L << 47) | (((base >>> 24) & 0xff) << 56);
        memory.writeLong(gdt + TSS_SELECTOR, low);
        memory.writeLong(gdt + TSS_SELECTOR + 8, base >>> 32);
        memory.writeShort(base + 102, (short) 104);  // I/O map base past the limit: no I/O bitmap
    }

    public static SpecialRegisters specialRegisters(long cr3, long apicBase) {
        Segment code = new Segment(0, 0xffff_ffff, CODE_SELECTOR, TYPE_CODE_EXEC_READ_ACCESSED, true, 0,
                false, true, true, true, false);
        Segment data = new Segment(0, 0xffff_ffff, DATA_SELECTOR, TYPE_DATA_READ_WRITE_ACCESSED, true, 0,
                true, true, false, true, false);
        Segment tr = new Segment(MicroVmLayout.TSS, TSS_LIMIT, TSS_SELECTOR, TYPE_TSS64_BUSY, true, 0,
                false, false, false, false, false);
        Segment ldt = new Segment(0, 0, 0, TYPE_LDT, false, 0, false, false, false, false, true);
        return new SpecialRegisters(code, data, data, data, data, data, tr, ldt,
                new DescriptorTable(MicroVmLayout.GDT, GDT_ENTRIES * 8 - 1), new DescriptorTable(0, 0),
                CR0, 0, cr3, CR4, 0, EFER, apicBase);
    }

    public static Registers registers(long entry, MicroVmLayout layout) {
        return Registers.RESET.withEntry(entry, layout.stackTop(), MicroVmLayout.BOOT_BLOCK);
    }
}
