package org.nxia.vmm.internal.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.api.LinuxProfile;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The memory plan: kernel, initramfs, e820 and the windows nothing may cover. */
class LayoutTest {

    static final long MIB = 1L << 20;
    /** Guest-physical ranges that are not RAM: the MMIO windows, IOAPIC, local APIC, KVM's TSS and identity-map pages. */
    static final long[][] HOLES = {
            {LinuxLayout.MMIO_BASE, LinuxLayout.MMIO_BASE + LinuxLayout.MMIO_SIZE},
            {0xfec0_0000L, 0xfec0_1000L},
            {0xfee0_0000L, 0xfee0_1000L},
            {0xfffb_c000L, 0xfffc_0000L},
    };

    @ParameterizedTest
    @ValueSource(longs = {64 * MIB, 256 * MIB, 1024 * MIB, 3072 * MIB})
    void initrdSitsAboveTheKernelAndBelowItsLimit(long ram) {
        long size = 20 * MIB + 123;
        LinuxLayout l = LinuxLayout.plan(ram, TestKernel.parsed(), size);
        assertEquals(TestKernel.PREF, l.kernelAddress());
        assertEquals(TestKernel.PREF + TestKernel.INIT_SIZE, l.kernelEnd());
        assertTrue(l.initrdAddress() >= l.kernelEnd(), "initrd overlaps the kernel");
        assertTrue(l.initrdAddress() + size - 1 <= TestKernel.INITRD_MAX, "initrd above initrd_addr_max");
        assertTrue(l.initrdAddress() + size <= ram);
        assertEquals(0, l.initrdAddress() % LinuxLayout.PAGE);
    }

    @Test
    void refusesWhatDoesNotFit() {
        IllegalArgumentException small = assertThrows(IllegalArgumentException.class,
                () -> LinuxLayout.plan(16 * MIB, TestKernel.parsed(), 0));
        assertTrue(small.getMessage().contains("give it more memory"), small.getMessage());
        IllegalArgumentException big = assertThrows(IllegalArgumentException.class,
                () -> LinuxLayout.plan(64 * MIB, TestKernel.parsed(), 50 * MIB));
        assertTrue(big.getMessage().contains("does not fit between the kernel's end"), big.getMessage());
    }

    @Test
    void noInitrd() {
        LinuxLayout l = LinuxLayout.plan(64 * MIB, TestKernel.parsed(), 0);
        assertEquals(0, l.initrdAddress());
        assertEquals(0, l.initrdSize());
    }

    @ParameterizedTest
    @ValueSource(longs = {64 * MIB, 1024 * MIB, 3072 * MIB})
    void e820CoversRamWithoutOverlapsAndLeavesTheHolesOut(long ram) {
        List<E820.Entry> map = E820.plan(ram);
        long covered = 0;
        for (int i = 0; i < map.size(); i++) {
            E820.Entry e = map.get(i);
            assertTrue(e.size() > 0);
            if (i > 0) {
                assertTrue(map.get(i - 1).end() <= e.address(), "entries overlap or are unsorted: " + map);
            }
            for (long[] hole : HOLES) {
                assertFalse(e.address() < hole[1] && hole[0] < e.end(), e + " covers the hole at 0x" + Long.toHexString(hole[0]));
            }
            covered = Math.max(covered, e.end());
        }
        assertEquals(ram, covered, "the map ends where RAM ends");
        E820.Entry last = map.getLast();
        assertEquals(E820.RAM, last.type());
        assertEquals(LinuxLayout.HIGH_RAM, last.address());
        assertTrue(map.stream().anyMatch(e -> e.type() == E820.RESERVED && e.address() <= LinuxLayout.EBDA
                && e.end() >= LinuxLayout.EBDA + MpTable.size(32)), "the MP tables are reserved");
    }

    @Test
    void lowStructuresDoNotOverlap() {
        long[][] ranges = {
                {LinuxLayout.GDT, LinuxLayout.GDT + 32},
                {LinuxLayout.ZERO_PAGE, LinuxLayout.ZERO_PAGE + BootParams.SIZE},
                {LinuxLayout.PAGE_TABLES, LinuxLayout.PAGE_TABLES + 6 * LinuxLayout.PAGE},
                {LinuxLayout.CMDLINE, LinuxLayout.CMDLINE + LinuxLayout.CMDLINE_MAX},
                {LinuxLayout.EBDA, LinuxLayout.EBDA + MpTable.size(LinuxProfile.MAX_VCPUS)},
        };
        for (int i = 0; i < ranges.length; i++) {
            assertTrue(ranges[i][1] <= (i == ranges.length - 1 ? LinuxLayout.LEGACY_HOLE : LinuxLayout.EBDA));
            for (int j = i + 1; j < ranges.length; j++) {
                assertFalse(ranges[i][0] < ranges[j][1] && ranges[j][0] < ranges[i][1], "ranges " + i + " and " + j + " overlap");
            }
        }
    }
}
