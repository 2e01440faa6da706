package org.nxia.portal.api;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Optional;

import org.osgi.annotation.versioning.ProviderType;

/**
 * A named region of shared memory: anonymous (gone when deleted or when the
 * platform stops) or backed by a file (its content survives VM and platform
 * restarts). The host sees it as one {@link MemorySegment}; VMs that hold the
 * capability see it as a guest-physical range.
 */
@ProviderType
public interface PortalRegion {

    String name();

    /** Bytes, a multiple of 4 KiB. */
    long size();

    /** Who created it (free text for people and policy). */
    String owner();

    /** The most a VM may be granted: a VM asking for more is refused. */
    Rights rights();

    /** The backing file, empty for an anonymous region. */
    Optional<Path> file();

    /**
     * The host view (MAP_SHARED, page aligned). Valid until the region is
     * deleted; an access after that throws {@link IllegalStateException}.
     */
    MemorySegment segment();
}
