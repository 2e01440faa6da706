package org.nxia.portal.internal;

import java.time.Duration;
import java.util.Optional;

import org.nxia.portal.api.PortalMapping;
import org.nxia.portal.api.Rights;
import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.SharedMapping;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceContext;

/**
 * A {@code portal} device: one VM's capability for one region, its doorbell,
 * and the region's mapping while mapped.
 */
final class Grant implements Device, PortalMapping {

    /** The device's state for diagnostics. */
    record State(String region, Rights rights, boolean mapped, long gpa, long doorbellGpa, long rings) {
    }

    private final PortalsImpl portals;
    private final DeviceContext context;
    private final String region;
    private final Rights rights;
    private final DoorbellPage doorbell = new DoorbellPage();
    private SharedMapping mapping;
    /** The line of the device that shows the region to this VM's guest, or null. */
    private volatile InterruptLine interrupt;

    Grant(PortalsImpl portals, DeviceContext context, String region, Rights rights) {
        this.portals = portals;
        this.context = context;
        this.region = region;
        this.rights = rights;
        doorbell.gpa(context.claimMmio(Region.PAGE, doorbell));
    }

    synchronized void map(Region r) {
        if (mapping != null) {
            throw new IllegalArgumentException("portal " + region + " is already mapped into " + context.vmId()
                    + " at 0x" + Long.toHexString(mapping.gpa()));
        }
        mapping = context.mapPortal(region, r.segment(), rights == Rights.RO, doorbell.gpa());
    }

    synchronized boolean unmap() {
        if (mapping == null) {
            return false;
        }
        mapping.close();
        mapping = null;
        return true;
    }

    /** Names the region's interrupt in this VM (its virtio-pmem device's line). */
    synchronized AutoCloseable attachInterrupt(InterruptLine line) {
        if (interrupt != null) {
            throw new IllegalArgumentException("portal " + region + " already has an interrupt in " + context.vmId()
                    + " (GSI " + interrupt.gsi() + "): one device per region and VM");
        }
        interrupt = line;
        return () -> {
            synchronized (this) {
                if (interrupt == line) {
                    interrupt = null;
                }
            }
            portals.closeLinksTo(this);
        };
    }

    InterruptLine interrupt() {
        return interrupt;
    }

    DoorbellPage doorbellPage() {
        return doorbell;
    }

    /** A hypervisor doorbell on the 4-byte store guests ring with (guest kit: {@code nxia_portal_ring}). */
    Optional<Doorbell> hypervisorDoorbell() {
        return context.createDoorbell(doorbell.gpa(), 4);
    }

    @Override
    public String type() {
        return PortalsImpl.TYPE;
    }

    @Override
    public synchronized Record state() {
        return new State(region, rights, mapping != null, gpa(), doorbell.gpa(), doorbell.rings());
    }

    @Override
    public void close() {
        unmap();
        portals.forget(this);
    }

    @Override
    public String vmId() {
        return context.vmId();
    }

    @Override
    public String region() {
        return region;
    }

    @Override
    public Rights rights() {
        return rights;
    }

    @Override
    public synchronized boolean mapped() {
        return mapping != null;
    }

    @Override
    public synchronized long gpa() {
        return mapping == null ? 0 : mapping.gpa();
    }

    @Override
    public long doorbellGpa() {
        return doorbell.gpa();
    }

    @Override
    public long rings() {
        return doorbell.rings();
    }

    @Override
    public long awaitRing(long seen, Duration timeout) throws InterruptedException {
        return doorbell.await(seen, timeout);
    }
}
