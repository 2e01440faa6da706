package org.nxia.vmm.internal.linux;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Optional;

import org.nxia.vmm.internal.acpi.AcpiPlatform;
import org.nxia.vmm.internal.acpi.AcpiTables;
import org.nxia.vmm.internal.acpi.IsaDevice;
import org.nxia.vmm.internal.acpi.VirtioMmioDevice;
import org.nxia.vmm.spi.DescriptorTable;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.Segment;
import org.nxia.vmm.spi.SpecialRegisters;

/**
 * Puts a bzImage, its initramfs and every boot structure into guest memory
 * and says how the boot vCPU enters: the 64-bit boot protocol (long mode,
 * paging with the first 4 GiB identity-mapped by 2 MiB pages, a flat GDT with
 * __BOOT_CS 0x10 and __BOOT_DS 0x18, interrupts off, %rsi = zero page).
 */
public final class LinuxBoot {

    public static final int BOOT_CS = 0x10;
    public static final int BOOT_DS = 0x18;
    static final long CR0 = 0x8000_0011L;  // PG | ET | PE
    static final long CR4 = 0x20;          // PAE
    static final long EFER = 0x500;        // LMA | LME
    /** Page-table entry bits: present, writable, and (in a directory) a 2 MiB page. */
    static final long P = 1;
    static final long RW = 2;
    static final long PS = 0x80;
    static final int IDENTITY_GIB = 4;
    /** BIOS data area: the EBDA's segment and the base memory size in KiB, where Linux looks for them. */
    static final long BDA_EBDA_SEGMENT = 0x40e;
    static final long BDA_BASE_MEMORY_KIB = 0x413;

    /** The 16550 on COM1 and the i8042's keyboard port, which every Linux VM has, as the DSDT names them. */
    static final IsaDevice COM1 = new IsaDevice("COM1", "PNP0501", List.of(new IsaDevice.IoPorts(0x3f8, 8)), 4);
    static final IsaDevice KEYBOARD = new IsaDevice("PS2K", "PNP0303",
            List.of(new IsaDevice.IoPorts(0x60, 1), new IsaDevice.IoPorts(0x64, 1)), 1);

    private LinuxBoot() {
    }

    /**
     * Writes everything: GDT, page tables, BIOS data area, MP tables, zero
     * page, command line, kernel and initramfs.
     */
    public static void load(GuestMemory memory, BzImage kernel, byte[] kernelFile, LinuxLayout layout, byte[] initrd,
                            String cmdline, int cpus, int cpuSignature, int cpuFeatures) {
        load(memory, kernel, kernelFile, layout, initrd, cmdline, cpus, cpuSignature, cpuFeatures, Optional.empty());
    }

    /**
     * Writes everything {@link #load(GuestMemory, BzImage, byte[], LinuxLayout, byte[], String, int, int, int)}
     * does, and {@code acpi}'s tables at their address with the zero page pointing at their RSDP.
     *
     * @throws IllegalArgumentException when the tables were built for another place than
     *                                  {@link LinuxLayout#ACPI_TABLES} or outgrow it
     */
    public static void load(GuestMemory memory, BzImage kernel, byte[] kernelFile, LinuxLayout layout, byte[] initrd,
                            String cmdline, int cpus, int cpuSignature, int cpuFeatures, Optional<AcpiTables> acpi) {
        writeGdt(memory);
        writePageTables(memory);
        memory.writeShort(BDA_EBDA_SEGMENT, (short) (LinuxLayout.EBDA >> 4));
        memory.writeShort(BDA_BASE_MEMORY_KIB, (short) (LinuxLayout.EBDA >> 10));
        // The MP tables stay with ACPI: a kernel booted with acpi=off still finds its CPUs and IRQs.
        memory.write(LinuxLayout.EBDA, MpTable.build(LinuxLayout.EBDA, cpus, cpuSignature, cpuFeatures));
        long rsdp = 0;
        if (acpi.isPresent()) {
            AcpiTables tables = acpi.get();
            byte[] bytes = tables.bytes();
            if (tables.address() != LinuxLayout.ACPI_TABLES || bytes.length > LinuxLayout.ACPI_TABLES_MAX) {
                throw new IllegalArgumentException("ACPI tables of %d bytes at 0x%x: a Linux VM has room for %d at 0x%x"
                        .formatted(bytes.length, tables.address(), LinuxLayout.ACPI_TABLES_MAX, LinuxLayout.ACPI_TABLES));
            }
            memory.write(tables.address(), bytes);
            rsdp = tables.rsdpAddress();
        }
        List<E820.Entry> map = E820.plan(layout.ramSize());
        memory.write(LinuxLayout.ZERO_PAGE, BootParams.build(kernel, layout, cmdline, map, rsdp));
        memory.write(LinuxLayout.CMDLINE, BootParams.cmdlineBytes(cmdline));
        int payload = kernelFile.length - kernel.kernelOffset();
        MemorySegment.copy(kernelFile, kernel.kernelOffset(), memory.slice(layout.kernelAddress(), payload),
                ValueLayout.JAVA_BYTE, 0, payload);
        if (initrd.length > 0) {
            memory.write(layout.initrdAddress(), initrd);
        }
    }

    /**
     * The ACPI tables for {@code cpus} vCPUs and the virtio-mmio devices, at
     * {@link LinuxLayout#ACPI_TABLES}, describing the machine the MP table
     * does: the same APIC ids and addresses, IO-APIC id = number of vCPUs.
     * No interrupt source overrides: the MP table routes ISA IRQ n to pin n
     * with the bus's polarity and trigger, ACPI's default without one. COM1
     * and the keyboard are in the DSDT: in hardware-reduced mode Linux maps
     * no ISA IRQ by itself, so the console gets its IRQ from there.
     */
    public static AcpiTables acpiTables(int cpus, List<VirtioMmioDevice> virtioMmio) {
        return acpiTables(cpus, virtioMmio, false);
    }

    /** {@link #acpiTables(int, List)}, with a VMBus in the DSDT when {@code vmbus}. */
    public static AcpiTables acpiTables(int cpus, List<VirtioMmioDevice> virtioMmio, boolean vmbus) {
        return AcpiTables.build(LinuxLayout.ACPI_TABLES, new AcpiPlatform(cpus, MpTable.LOCAL_APIC, MpTable.IOAPIC, cpus,
                MpTable.IOAPIC_PINS, List.of(), List.of(COM1, KEYBOARD), virtioMmio, vmbus));
    }

    static void writeGdt(GuestMemory memory) {
        memory.slice(LinuxLayout.GDT, 4 * 8).fill((byte) 0);
        memory.writeLong(LinuxLayout.GDT + BOOT_CS, 0x00af_9b00_0000_ffffL);  // P, DPL 0, code exec/read, L, G
        memory.writeLong(LinuxLayout.GDT + BOOT_DS, 0x00cf_9300_0000_ffffL);  // P, DPL 0, data read/write, DB, G
    }

    /** PML4, one PDPT and four directories of 2 MiB pages: 0 to 4 GiB mapped to itself. */
    static void writePageTables(GuestMemory memory) {
        long pml4 = LinuxLayout.PAGE_TABLES;
        long pdpt = pml4 + LinuxLayout.PAGE;
        long pd = pdpt + LinuxLayout.PAGE;
        MemorySegment tables = memory.slice(pml4, (2 + IDENTITY_GIB) * LinuxLayout.PAGE);
        tables.fill((byte) 0);
        memory.writeLong(pml4, pdpt | P | RW);
        for (int g = 0; g < IDENTITY_GIB; g++) {
            long dir = pd + g * LinuxLayout.PAGE;
            memory.writeLong(pdpt + g * 8L, dir | P | RW);
            for (int i = 0; i < 512; i++) {
                memory.writeLong(dir + i * 8L, ((long) g << 30) + ((long) i << 21) | P | RW | PS);
            }
        }
    }

    /** Walks the boot page tables: the physical address {@code virtual} maps to, or -1. */
    static long translate(GuestMemory memory, long virtual) {
        long pml4e = memory.readLong(LinuxLayout.PAGE_TABLES + ((virtual >>> 39) & 511) * 8);
        if ((pml4e & P) == 0) {
            return -1;
        }
        long pdpte = memory.readLong((pml4e & ~0xfffL) + ((virtual >>> 30) & 511) * 8);
        if ((pdpte & P) == 0) {
            return -1;
        }
        long pde = memory.readLong((pdpte & ~0xfffL) + ((virtual >>> 21) & 511) * 8);
        if ((pde & P) == 0 || (pde & PS) == 0) {
            return -1;
        }
        return (pde & ~0x1f_ffffL & 0x000f_ffff_ffff_ffffL) | (virtual & 0x1f_ffffL);
    }

    public static SpecialRegisters specialRegisters(long apicBase) {
        Segment code = new Segment(0, 0xffff_ffff, BOOT_CS, 11, true, 0, false, true, true, true, false);
        Segment data = new Segment(0, 0xffff_ffff, BOOT_DS, 3, true, 0, true, true, false, true, false);
        // VMX wants a usable busy TSS in TR; the kernel loads its own before it needs one.
        Segment tr = new Segment(0, 0xffff, 0, 11, true, 0, false, false, false, false, false);
        Segment ldt = new Segment(0, 0, 0, 2, false, 0, false, false, false, false, true);
        return new SpecialRegisters(code, data, data, data, data, data, tr, ldt,
                new DescriptorTable(LinuxLayout.GDT, 4 * 8 - 1), new DescriptorTable(0, 0),
                CR0, 0, LinuxLayout.PAGE_TABLES, CR4, 0, EFER, apicBase);
    }

    /** Enters at the 64-bit entry point with %rsi pointing at the zero page, interrupts off. */
    public static Registers registers(LinuxLayout layout) {
        return new Registers(0, 0, 0, 0, LinuxLayout.ZERO_PAGE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                layout.kernelAddress() + BzImage.ENTRY_64, 0x2);
    }
}
