package org.nxia.portal.api;

import java.lang.foreign.MemorySegment;

import org.osgi.annotation.versioning.ProviderType;

/**
 * An allocator over a shared region that hands out bounded, generation-checked
 * {@link Ref}s. Implementations are safe for concurrent use by several threads
 * (and by other processes or guests that follow the ABI).
 */
@ProviderType
public interface PortalArena {

    /**
     * Allocates a block of at least {@code length} bytes.
     *
     * @throws PortalException if the length is not positive, is larger than this
     *                         arena can hand out in one allocation, or the arena is full
     */
    Ref allocate(long length);

    /**
     * Frees the block {@code ref} refers to and bumps its generation, so every
     * copy of {@code ref} becomes stale.
     *
     * @throws PortalException if the reference is out of bounds, stale, forged,
     *                         or the block is not allocated (a double free)
     */
    void free(Ref ref);

    /**
     * Returns a slice of exactly {@code ref.length()} bytes of the block, after
     * checking the reference against the arena bounds and the block's current
     * allocation state and generation. The check holds at the time of the call.
     *
     * @throws PortalException if the reference is out of bounds, stale or forged
     */
    MemorySegment deref(Ref ref);

    /** Returns the number of data bytes the arena manages. */
    long capacity();
}
