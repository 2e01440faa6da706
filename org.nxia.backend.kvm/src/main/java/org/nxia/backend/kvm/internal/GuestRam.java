package org.nxia.backend.kvm.internal;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.nxia.vmm.spi.HostPlacement;
import org.nxia.vmm.spi.PlacementOutcome;

/**
 * Guest RAM: a memfd mapped shared (a memfd, so that snapshots find the touched pages by
 * SEEK_DATA and the RAM could be shared), placed as a {@link HostPlacement} asks.
 *
 * <p>Huge pages are best effort: hugetlbfs pages ({@code MFD_HUGETLB}, the memfd form of
 * {@code MAP_HUGETLB}) when the host has enough free, else transparent huge pages by
 * {@code madvise(MADV_HUGEPAGE)} (effective for a memfd only where the host's shmem THP setting
 * allows it), else 4 KiB pages; {@link #outcomes()} says which and why. No overcommit is a
 * requirement: all of RAM is allocated now ({@code MADV_POPULATE_WRITE}), and a host that cannot
 * fails the VM's creation.
 */
final class GuestRam implements AutoCloseable {

    static final long HUGE_PAGE = 2L << 20;

    final int fd;
    /** Global-scope mapping: the partition scopes its own view and unmaps this one. */
    final MemorySegment mapping;
    private final List<PlacementOutcome> outcomes;

    private GuestRam(int fd, MemorySegment mapping, List<PlacementOutcome> outcomes) {
        this.fd = fd;
        this.mapping = mapping;
        this.outcomes = outcomes;
    }

    /** What the host offers for huge pages, read when a VM is made. */
    record HostPages(long freeHugePages, long hugePageBytes, String shmemThp) {

        private static final Pattern SELECTED = Pattern.compile("\\[(\\S+)]");

        static HostPages read() {
            long free = 0;
            long size = 0;
            try {
                for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                    if (line.startsWith("HugePages_Free:")) {
                        free = Long.parseLong(line.substring(15).strip());
                    } else if (line.startsWith("Hugepagesize:")) {
                        size = Long.parseLong(line.substring(13).replace("kB", "").strip()) << 10;
                    }
                }
            } catch (IOException | NumberFormatException e) {
                // no /proc/meminfo as expected: no hugetlbfs pages to count on
            }
            String thp = selected("/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/shmem_enabled");
            if (thp.isEmpty() || thp.equals("inherit")) {   // the per-size setting (Linux 6.11+) defers to the global one
                thp = selected("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
            }
            return new HostPages(free, size, thp);
        }

        /** The bracketed choice of a sysfs setting ("always [advise] never"), or "" where there is none. */
        private static String selected(String file) {
            try {
                Matcher m = SELECTED.matcher(Files.readString(Path.of(file)));
                return m.find() ? m.group(1) : "";
            } catch (IOException e) {
                return "";
            }
        }

        /** Whether enough 2 MiB hugetlbfs pages are free for {@code bytes}. */
        boolean hugetlbFits(long bytes) {
            return hugePageBytes == HUGE_PAGE && freeHugePages >= bytes / HUGE_PAGE;
        }

        /** Why hugetlbfs pages are not used for {@code bytes}. */
        String hugetlbShortfall(long bytes) {
            if (hugePageBytes != HUGE_PAGE && freeHugePages > 0) {
                return "hugetlbfs pages are " + (hugePageBytes >> 10) + " KiB, not 2 MiB";
            }
            return freeHugePages == 0 ? "none free" : freeHugePages + " free of " + bytes / HUGE_PAGE + " needed";
        }

        /** Whether madvise(MADV_HUGEPAGE) on shared memory gets transparent huge pages here. */
        boolean shmemThpOnAdvice() {
            return switch (shmemThp) {
                case "always", "within_size", "advise", "force" -> true;
                default -> false;
            };
        }
    }

    static GuestRam allocate(long bytes, HostPlacement placement) {
        return allocate(bytes, placement, placement.hugePages() ? HostPages.read() : new HostPages(0, 0, ""));
    }

    static GuestRam allocate(long bytes, HostPlacement placement, HostPages host) {
        PlacementOutcome huge = new PlacementOutcome(PlacementOutcome.HUGE_PAGES, false, false, "4 KiB pages");
        GuestRam ram = null;
        String hugetlbWhy = host.hugetlbShortfall(bytes);
        if (placement.hugePages() && host.hugetlbFits(bytes)) {
            try {
                ram = map(bytes, Libc.MFD_CLOEXEC | Libc.MFD_HUGETLB);
                huge = new PlacementOutcome(PlacementOutcome.HUGE_PAGES, true, true, "hugetlbfs 2 MiB pages");
            } catch (KvmException e) {
                // another process took the pages between the count and the reservation: fall back
                hugetlbWhy = "reservation failed (" + Libc.errnoName(e.errno()) + ")";
            }
        }
        if (ram == null) {
            ram = map(bytes, Libc.MFD_CLOEXEC);
            if (placement.hugePages()) {
                huge = transparent(ram, hugetlbWhy, host);
            }
        }
        PlacementOutcome overcommit = new PlacementOutcome(PlacementOutcome.OVERCOMMIT, false, false,
                "allowed: pages are allocated when first touched");
        if (!placement.overcommit()) {
            try {
                // WHY populate rather than mlock: it allocates every page now (and says so when it cannot)
                // without needing RLIMIT_MEMLOCK, which is a few MiB on most hosts.
                Libc.madvise(ram.mapping, Libc.MADV_POPULATE_WRITE, "guest RAM, no overcommit");
            } catch (KvmException e) {
                ram.close();
                throw new KvmException(e.call(), e.errno(), "guest RAM of " + (bytes >> 20) + " MiB could not be allocated up front"
                        + " (the placement says no overcommit): " + e.getMessage() + "; free host memory, make the VM smaller"
                        + " or allow overcommit (overcommit = true)");
            }
            overcommit = new PlacementOutcome(PlacementOutcome.OVERCOMMIT, true, true,
                    "none: all " + (bytes >> 20) + " MiB allocated up front");
        }
        return new GuestRam(ram.fd, ram.mapping, List.of(huge, overcommit));
    }

    /** madvise(MADV_HUGEPAGE) on RAM not on hugetlbfs pages; {@code hugetlbWhy}: why not ("none free"). */
    private static PlacementOutcome transparent(GuestRam ram, String hugetlbWhy, HostPages host) {
        try {
            Libc.madvise(ram.mapping, Libc.MADV_HUGEPAGE, "guest RAM, huge pages");
        } catch (KvmException e) {
            return new PlacementOutcome(PlacementOutcome.HUGE_PAGES, true, false, "requested, " + hugetlbWhy
                    + ", no THP in this kernel (" + Libc.errnoName(e.errno()) + "): 4 KiB pages");
        }
        if (host.shmemThpOnAdvice()) {
            return new PlacementOutcome(PlacementOutcome.HUGE_PAGES, true, true,
                    "THP madvise (shmem_enabled=" + host.shmemThp() + "; hugetlbfs: " + hugetlbWhy + ")");
        }
        return new PlacementOutcome(PlacementOutcome.HUGE_PAGES, true, false, "requested, " + hugetlbWhy
                + ", THP off for shared memory (shmem_enabled=" + (host.shmemThp().isEmpty() ? "absent" : host.shmemThp())
                + "): 4 KiB pages");
    }

    private static GuestRam map(long bytes, int memfdFlags) {
        int fd = Libc.memfdCreate("nxia-guest-ram", memfdFlags);
        try {
            Libc.ftruncate(fd, bytes);
            // a hugetlbfs mapping reserves its pages here, and fails (ENOMEM) if they are gone
            return new GuestRam(fd, Libc.mmap(bytes, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, "guest RAM"), List.of());
        } catch (KvmException e) {
            Libc.close(fd);
            throw e;
        }
    }

    /** Huge pages and overcommit, as they took effect. */
    List<PlacementOutcome> outcomes() {
        return outcomes;
    }

    @Override
    public void close() {
        Libc.munmap(mapping);
        Libc.close(fd);
    }
}
