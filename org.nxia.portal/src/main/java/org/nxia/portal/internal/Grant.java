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
import org.nxia.vmm.api.device.SavedStateCodec;

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
        // a file-backed region's file goes along: a snapshot of the VM then saves it by reference
        mapping = context.mapPortal(region, r.segment(), r.file(), rights == Rights.RO, doorbell.gpa());
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

    static final String SAVED_KIND = "portal grant";

    /**
     * What the guest knows: where the region is mapped (0: not mapped) and where its doorbell is.
     * The region's content is the VM snapshot's own (its Portal regions), not the device's.
     */
    @Override
    public synchronized byte[] saveState() {
        return SavedStateCodec.writer(SAVED_KIND, 1).i64(gpa()).i64(doorbell.gpa()).toBytes();
    }

    /**
     * A new VM of the same profile maps the region while it is made: it must be where the saved
     * guest knew it, and is unmapped if the guest knew it unmapped.
     */
    @Override
    public synchronized void restoreState(byte[] saved) {
        SavedStateCodec.Reader in = SavedStateCodec.reader(saved, SAVED_KIND, 1);
        long savedGpa = in.i64();
        long savedDoorbell = in.i64();
        in.end();
        if (savedDoorbell != doorbell.gpa() || (savedGpa != 0 && savedGpa != gpa())) {
            throw in.refuse("the guest knows region %s at 0x%x and its doorbell at 0x%x; here they are at 0x%x and 0x%x"
                    .formatted(region, savedGpa, savedDoorbell, gpa(), doorbell.gpa()));
        }
        if (savedGpa == 0) {
            unmap();
        }
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
