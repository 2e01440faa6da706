package org.nxia.vmm.internal.linux;

import java.util.List;

/**
 * The BIOS memory map a Linux VM's kernel gets in boot_params: RAM below
 * the EBDA, the EBDA (MP tables) and the legacy video/BIOS area reserved,
 * RAM from 1 MiB to the end of guest memory. Nothing else: the MMIO windows,
 * the IOAPIC and local APIC and the TSS pages are above RAM, in no entry.
 */
public final class E820 {

    public static final int RAM = 1;
    public static final int RESERVED = 2;
    /** An entry: u64 address, u64 size, u32 type. */
    public static final int ENTRY_SIZE = 20;
    /** Entries the zero page holds (E820_MAX_ENTRIES_ZEROPAGE). */
    public static final int MAX_ENTRIES = 128;

    public record Entry(long address, long size, int type) {
        public long end() {
            return address + size;
        }
    }

    private E820() {
    }

    /** The map for {@code ramSize} bytes of RAM at 0 (at least 2 MiB). */
    public static List<Entry> plan(long ramSize) {
        return List.of(
                new Entry(0, LinuxLayout.EBDA, RAM),
                new Entry(LinuxLayout.EBDA, LinuxLayout.LEGACY_HOLE - LinuxLayout.EBDA, RESERVED),
                new Entry(LinuxLayout.LEGACY_HOLE, LinuxLayout.HIGH_RAM - LinuxLayout.LEGACY_HOLE, RESERVED),
                new Entry(LinuxLayout.HIGH_RAM, ramSize - LinuxLayout.HIGH_RAM, RAM));
    }
}
