package org.nxia.portal.api;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import org.osgi.annotation.versioning.ProviderType;

/**
 * The platform's Portal regions and their mappings into VMs. A VM may map a
 * region only when its profile lists the device {@code portal:name=<region>,rights=ro|rw}
 * (the capability); the region is then mapped when the VM is created, and can
 * be unmapped and mapped again with {@link #unmap} and {@link #map}.
 */
@ProviderType
public interface Portals {

    /** Region names: 1 to 15 of {@code [a-z0-9_-]}, starting with a letter or digit. */
    String NAME_PATTERN = "[a-z0-9][a-z0-9_-]{0,14}";

    /**
     * Creates a region. With a {@code file}, the region is that file mapped
     * shared: an existing file of exactly {@code size} bytes keeps its content
     * (persistence), a missing one is created zero-filled. Without, the region
     * is anonymous shared memory.
     *
     * @throws IllegalArgumentException for a bad name or size, a name in use, or
     *                                  an existing file of another size
     */
    PortalRegion create(String name, long size, String owner, Rights rights, Path file);

    Optional<PortalRegion> find(String name);

    List<PortalRegion> list();

    /**
     * Deletes a region: unmaps it from the host (the file, if any, stays).
     *
     * @throws IllegalStateException while a VM has it mapped
     * @return whether it existed
     */
    boolean delete(String name);

    /** Every VM grant, mapped or not. */
    List<PortalMapping> mappings();

    /**
     * Maps {@code region} into VM {@code vmId} with the rights its profile grants.
     *
     * @throws IllegalArgumentException when the VM has no grant for the region,
     *                                  the region does not exist, or it is mapped already
     */
    PortalMapping map(String vmId, String region);

    /**
     * Removes {@code region} from VM {@code vmId}; guest accesses then stop the VM.
     *
     * @throws IllegalArgumentException when the VM has no grant for the region
     */
    PortalMapping unmap(String vmId, String region);
}
