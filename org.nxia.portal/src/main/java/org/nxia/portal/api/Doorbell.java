package org.nxia.portal.api;

import java.time.Duration;

import org.osgi.annotation.versioning.ProviderType;

/**
 * Guest → host notification for one mapped region: each guest write to the
 * doorbell address counts one ring. The host side waits for the count to move;
 * it spins briefly, then parks. (Host → guest needs no doorbell: a micro-VM
 * guest polls the ring.)
 */
@ProviderType
public interface Doorbell {

    /** Rings so far. */
    long rings();

    /**
     * Waits until {@link #rings()} differs from {@code seen} or {@code timeout}
     * passes. One thread at a time may wait on a doorbell.
     *
     * @return the ring count now (equal to {@code seen} on timeout)
     */
    long await(long seen, Duration timeout) throws InterruptedException;

    /** The guest-physical address a guest writes to ring. */
    long gpa();
}
