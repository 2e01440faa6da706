package org.nxia.vmm.spi;

import java.util.Objects;

/**
 * What became of one part of a VM's {@link HostPlacement}, for {@code vm:info}.
 *
 * @param aspect    {@link #CPUS}, {@link #HUGE_PAGES} or {@link #OVERCOMMIT}
 * @param requested whether the placement asked for it
 * @param inEffect  whether it took effect
 * @param detail    what is in effect, and why not where it is not (e.g. "THP madvise",
 *                  "requested, none free: 4 KiB pages")
 */
public record PlacementOutcome(String aspect, boolean requested, boolean inEffect, String detail) {

    public static final String CPUS = "cpus";
    public static final String HUGE_PAGES = "hugepages";
    public static final String OVERCOMMIT = "overcommit";

    public PlacementOutcome {
        Objects.requireNonNull(aspect, "aspect");
        Objects.requireNonNull(detail, "detail");
    }
}
