package org.nxia.portal.api;

import java.lang.foreign.MemorySegment;

import org.osgi.annotation.versioning.ProviderType;

/**
 * A ring of byte messages over shared memory. An SPSC ring
 * ({@link PortalStructures#formatSpsc}) has one thread (or party) calling
 * {@link #offer} and one calling {@link #poll}; an MPMC ring
 * ({@link PortalStructures#formatMpmc}) takes any number of each.
 */
@ProviderType
public interface Ring {

    /**
     * Copies {@code message} into the ring.
     *
     * @return {@code true} if the message was enqueued, {@code false} if the
     *         ring has no room for it now
     * @throws PortalException if the message can never fit this ring, or the
     *                         consumer's index in shared memory is corrupt
     */
    boolean offer(MemorySegment message);

    /**
     * Copies the next message into {@code into} and removes it from the ring.
     *
     * @return the message length, or -1 if the ring is empty
     * @throws PortalException if the message is larger than {@code into} (the
     *                         message stays in the ring), or the producer's index
     *                         or a record in shared memory is corrupt
     */
    int poll(MemorySegment into);

    /** Returns the size of the ring's data area in bytes. */
    int capacity();

    /**
     * Whether no message is waiting now: what a consumer checks, after saying
     * it will sleep, before it sleeps (so a message published in between is
     * not missed).
     */
    boolean isEmpty();
}
