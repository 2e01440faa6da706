package org.nxia.portal.api;

import org.osgi.annotation.versioning.ProviderType;

/**
 * One VM's doorbell for a region wired to the region's interrupt in another
 * VM (from {@link Portals#connect}): each ring in {@link #fromVm()} raises the
 * interrupt in {@link #toVm()}. Closing it disconnects them; destroying either
 * VM does too.
 */
@ProviderType
public interface DoorbellLink extends AutoCloseable {

    String fromVm();

    String toVm();

    String region();

    /** The interrupt line (GSI) raised in {@link #toVm()}. */
    int gsi();

    /**
     * Whether the hypervisor raises the interrupt itself (KVM: the doorbell's
     * ioeventfd is the other VM's irqfd): no host thread runs per ring. When
     * false, the vCPU thread that takes the doorbell's exit raises it.
     */
    boolean inHypervisor();

    /** Whether it is still connected. */
    boolean connected();

    @Override
    void close();
}
