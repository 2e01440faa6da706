package org.nxia.portal.api;

import java.time.Duration;

import org.osgi.annotation.versioning.ProviderType;

/**
 * A VM's grant of one region (from its profile's {@code portal} device) and,
 * while mapped, where the guest sees the region.
 */
@ProviderType
public interface PortalMapping {

    String vmId();

    String region();

    /** The rights granted by the VM's profile. */
    Rights rights();

    boolean mapped();

    /** Guest-physical address while mapped, else 0. */
    long gpa();

    /**
     * The guest-physical address of the region's doorbell page: each guest
     * store to it counts one ring (guest kit: {@code nxia_portal_ring}). The
     * hypervisor's doorbell ({@code org.nxia.vmm.spi.Doorbell}) may take the
     * stores instead while the region is linked to another VM.
     */
    long doorbellGpa();

    /** Rings so far. */
    long rings();

    /**
     * Waits until {@link #rings()} differs from {@code seen} or {@code timeout}
     * passes: it spins briefly, then parks. One thread at a time may wait.
     *
     * @return the ring count now (equal to {@code seen} on timeout)
     */
    long awaitRing(long seen, Duration timeout) throws InterruptedException;
}
