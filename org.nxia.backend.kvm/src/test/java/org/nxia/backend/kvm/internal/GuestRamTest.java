package org.nxia.backend.kvm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.GuestRange;
import org.nxia.vmm.spi.HostPlacement;
import org.nxia.vmm.spi.PlacementOutcome;

/** Guest RAM placed on this host, no /dev/kvm needed: what the kernel made of each mapping, read back from smaps. */
class GuestRamTest {

    private static final long SIZE = 8L << 20;
    private static final HostPlacement HUGE = new HostPlacement(List.of(), true, true);
    private static final HostPlacement NO_OVERCOMMIT = new HostPlacement(List.of(), false, false);

    @Test
    void hugePagesAreAdvisedAndTheOutcomeSaysWhatTheHostMadeOfIt() throws Exception {
        try (GuestRam ram = GuestRam.allocate(SIZE, HUGE)) {
            PlacementOutcome huge = ram.outcomes().get(0);
            Smaps smaps = Smaps.of(ram.mapping.address());
            assertTrue(huge.requested());
            if (huge.detail().startsWith("hugetlbfs")) {
                assertEquals(2L << 20, smaps.kib("KernelPageSize"), huge.detail());
            } else {
                assertTrue(smaps.flag("hg"), "madvise(MADV_HUGEPAGE) applied: " + smaps.fields().get("VmFlags"));
                assertEquals(smaps.thpEligible(), huge.inEffect(), huge.detail() + "; THPeligible " + smaps.fields().get("THPeligible"));
            }
        }
    }

    @Test
    void withoutHugePagesRamIsNotAdvised() throws Exception {
        try (GuestRam ram = GuestRam.allocate(SIZE, HostPlacement.NONE)) {
            assertFalse(Smaps.of(ram.mapping.address()).flag("hg"));
            assertEquals(new PlacementOutcome(PlacementOutcome.HUGE_PAGES, false, false, "4 KiB pages"), ram.outcomes().get(0));
        }
    }

    @Test
    void noOvercommitAllocatesEveryPageUpFront() throws Exception {
        try (GuestRam lazy = GuestRam.allocate(SIZE, HostPlacement.NONE);
             GuestRam eager = GuestRam.allocate(SIZE, NO_OVERCOMMIT)) {
            assertEquals(0, Smaps.of(lazy.mapping.address()).kib("Rss"));
            assertEquals(List.of(), KvmPartition.dataExtents(lazy.fd, SIZE));
            assertEquals(SIZE, Smaps.of(eager.mapping.address()).kib("Rss"), "every page mapped");
            assertEquals(List.of(new GuestRange(0, SIZE)), KvmPartition.dataExtents(eager.fd, SIZE), "every page allocated");
            assertEquals(new PlacementOutcome(PlacementOutcome.OVERCOMMIT, true, true, "none: all 8 MiB allocated up front"),
                    eager.outcomes().get(1));
            assertFalse(lazy.outcomes().get(1).inEffect());
        }
    }

    @Test
    void noFreeHugePagesAndShmemThpOffLeaves4KiBPagesAndSaysWhy() throws Exception {
        try (GuestRam ram = GuestRam.allocate(SIZE, HUGE, new GuestRam.HostPages(0, 2L << 20, "never"))) {
            assertEquals(new PlacementOutcome(PlacementOutcome.HUGE_PAGES, true, false,
                    "requested, none free, THP off for shared memory (shmem_enabled=never): 4 KiB pages"), ram.outcomes().get(0));
            assertTrue(Smaps.of(ram.mapping.address()).flag("hg"), "advised all the same: THP may be turned on later");
        }
        try (GuestRam ram = GuestRam.allocate(SIZE, HUGE, new GuestRam.HostPages(3, 2L << 20, "advise"))) {
            assertEquals(new PlacementOutcome(PlacementOutcome.HUGE_PAGES, true, true,
                    "THP madvise (shmem_enabled=advise; hugetlbfs: 3 free of 4 needed)"), ram.outcomes().get(0));
        }
    }

    @Test
    void aHugetlbReservationThatFailsFallsBackAndSaysSo() throws Exception {
        String free = Files.readAllLines(Path.of("/proc/meminfo")).stream().filter(l -> l.startsWith("HugePages_Free:")).findFirst().orElse("");
        assumeFalse(free.isEmpty() || !free.endsWith(" 0"), "the host has hugetlbfs pages free: the reservation would succeed");
        // the count says 4 are free, the host has none: memfd_create(MFD_HUGETLB) works, the mmap reservation fails
        try (GuestRam ram = GuestRam.allocate(SIZE, HUGE, new GuestRam.HostPages(4, 2L << 20, "never"))) {
            PlacementOutcome huge = ram.outcomes().get(0);
            assertFalse(huge.inEffect());
            assertTrue(huge.detail().startsWith("requested, reservation failed (ENOMEM)"), huge.detail());
            assertEquals(4096, Smaps.of(ram.mapping.address()).kib("KernelPageSize"));
        }
    }

    @Test
    void hostPagesDecideHugetlbOnlyWithEnoughFree2MiBPages() {
        assertTrue(new GuestRam.HostPages(4, 2L << 20, "").hugetlbFits(SIZE));
        assertFalse(new GuestRam.HostPages(3, 2L << 20, "").hugetlbFits(SIZE));
        assertFalse(new GuestRam.HostPages(100, 1L << 30, "").hugetlbFits(SIZE));
        assertEquals("none free", new GuestRam.HostPages(0, 2L << 20, "").hugetlbShortfall(SIZE));
        assertEquals("hugetlbfs pages are 1048576 KiB, not 2 MiB", new GuestRam.HostPages(100, 1L << 30, "").hugetlbShortfall(SIZE));
        for (String on : List.of("always", "within_size", "advise", "force")) {
            assertTrue(new GuestRam.HostPages(0, 0, on).shmemThpOnAdvice(), on);
        }
        for (String off : List.of("never", "deny", "")) {
            assertFalse(new GuestRam.HostPages(0, 0, off).shmemThpOnAdvice(), off);
        }
    }

    /** The call itself, where its effect is visible on any THP host: an anonymous mapping becomes THP-eligible. */
    @Test
    void madviseHugepageMakesAnAnonymousMappingThpEligible() throws Exception {
        String enabled = Files.readString(Path.of("/sys/kernel/mm/transparent_hugepage/enabled"));
        assumeFalse(enabled.contains("[never]"), "THP is off on this host: " + enabled);
        MemorySegment anon = Libc.mmap(SIZE, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, "test");
        try {
            assertEquals(enabled.contains("[always]"), Smaps.of(anon.address()).thpEligible());
            Libc.madvise(anon, Libc.MADV_HUGEPAGE, "test");
            Smaps after = Smaps.of(anon.address());
            assertTrue(after.flag("hg") && after.thpEligible(), after.fields().toString());
        } finally {
            Libc.munmap(anon);
        }
    }
}
