package org.nxia.portal.internal;

import java.util.Optional;

import org.nxia.portal.api.DoorbellLink;
import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.InterruptLine;

/**
 * A {@link DoorbellLink}. In the hypervisor: an ioeventfd on the source VM's
 * doorbell address (the 4-byte store guests make) whose eventfd is the target
 * VM's irqfd, so a ring never reaches the VMM. Every other store to the
 * doorbell page still exits, and the source doorbell forwards those itself.
 */
final class Link implements DoorbellLink {

    private final PortalsImpl portals;
    private final Grant from;
    private final Grant to;
    private final InterruptLine line;
    /** The source VM's ioeventfd and its connection to the line, or null (forwarded by the VMM). */
    private final Doorbell hypervisorDoorbell;
    private final AutoCloseable irqfd;
    private boolean closed;

    private Link(PortalsImpl portals, Grant from, Grant to, InterruptLine line, Doorbell hypervisorDoorbell, AutoCloseable irqfd) {
        this.portals = portals;
        this.from = from;
        this.to = to;
        this.line = line;
        this.hypervisorDoorbell = hypervisorDoorbell;
        this.irqfd = irqfd;
    }

    /** Joins {@code from}'s doorbell to {@code line}, in the hypervisor if it can. */
    static Link open(PortalsImpl portals, Grant from, Grant to, InterruptLine line) {
        Doorbell doorbell = from.hypervisorDoorbell().orElse(null);
        AutoCloseable irqfd = null;
        if (doorbell != null) {
            try {
                Optional<AutoCloseable> joined = doorbell.connect(line);
                irqfd = joined.orElse(null);
            } catch (RuntimeException e) {
                doorbell.close();
                throw e;
            }
            if (irqfd == null) {
                doorbell.close();   // stores exit again and reach the forwarding below
                doorbell = null;
            }
        }
        from.doorbellPage().forward(line);
        return new Link(portals, from, to, line, doorbell, irqfd);
    }

    Grant from() {
        return from;
    }

    Grant to() {
        return to;
    }

    @Override
    public String fromVm() {
        return from.vmId();
    }

    @Override
    public String toVm() {
        return to.vmId();
    }

    @Override
    public String region() {
        return from.region();
    }

    @Override
    public int gsi() {
        return line.gsi();
    }

    @Override
    public boolean inHypervisor() {
        return irqfd != null;
    }

    @Override
    public synchronized boolean connected() {
        return !closed;
    }

    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            from.doorbellPage().forward(null);
            if (irqfd != null) {
                try {
                    irqfd.close();
                } catch (Exception e) {
                    // the target VM is gone, and its irqfd with it
                }
            }
            if (hypervisorDoorbell != null) {
                hypervisorDoorbell.close();   // the doorbell page exits to the VMM again
            }
        }
        portals.forget(this);
    }

    @Override
    public String toString() {
        return "%s -> %s (%s, GSI %d, %s)".formatted(fromVm(), toVm(), region(), gsi(),
                inHypervisor() ? "in the hypervisor" : "through the VMM");
    }
}
