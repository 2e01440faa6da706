package org.nxia.device.virtio.internal.pmem;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.portal.api.PortalMapping;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Rights;
import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.SharedMapping;
import org.nxia.vmm.spi.SharedRam;
import org.nxia.vmm.spi.Synic;
import org.nxia.vmm.spi.SynicHost;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code virtio-pmem:region=NAME[,ro=true][,dax=true]}: a Portal region as a Linux guest's
 * persistent memory ({@code /dev/pmem0}), or with {@code dax=true} as device DAX
 * ({@code /dev/dax0.0}) that Linux processes map in place (see {@link DeviceDaxInfo}). The capability is the profile's
 * {@code portal:name=NAME} device, listed before this one: it maps the region
 * (outside RAM and the MMIO windows; the VMM places it) and this device tells
 * the driver where. The device's interrupt line is also the region's
 * interrupt in this VM, which {@code portal:connect} raises.
 */
@Component(property = DeviceFactory.TYPE_PROPERTY + "=" + VirtioPmemFactory.TYPE)
public final class VirtioPmemFactory implements DeviceFactory {

    static final String TYPE = "virtio-pmem";
    /** Linux maps pmem with memremap_pages, in 2 MiB subsections: the size must be a multiple. */
    static final long ALIGN = 2L << 20;

    private final Portals portals;

    @Activate
    public VirtioPmemFactory(@Reference Portals portals) {
        this.portals = portals;
    }

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String description() {
        return "virtio-pmem over virtio-mmio: a Portal region as persistent memory (region=NAME, ro=false, dax=false:"
                + " true shows it as /dev/daxN.0 for processes to map, from the region's 2 MiB on);"
                + " needs portal:name=NAME listed first (the capability)";
    }

    @Override
    public Device create(DeviceConfig config, DeviceContext context) {
        for (String key : config.parameters().keySet()) {
            if (!key.equals("region") && !key.equals("ro") && !key.equals("dax")) {
                throw new IllegalArgumentException("device virtio-pmem: unknown parameter '" + key + "' (region, ro, dax)");
            }
        }
        String name = config.get("region", null);
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("device virtio-pmem needs region=NAME, e.g. portal:name=data,virtio-pmem:region=data");
        }
        PortalRegion region = portals.find(name).orElseThrow(() -> new IllegalArgumentException(
                "device virtio-pmem: no portal " + name + " (portal:create makes one)"));
        PortalMapping grant = portals.mappings().stream()
                .filter(m -> m.vmId().equals(context.vmId()) && m.region().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("device virtio-pmem: " + context.vmId()
                        + " has no capability for portal " + name + ": list portal:name=" + name
                        + ",rights=ro|rw before virtio-pmem:region=" + name));
        if (!grant.mapped()) {
            throw new IllegalArgumentException("device virtio-pmem: portal " + name + " is not mapped into " + context.vmId());
        }
        boolean grantedRo = grant.rights() == Rights.RO;
        boolean readOnly = config.flag("ro", grantedRo);
        if (readOnly != grantedRo) {
            throw new IllegalArgumentException("device virtio-pmem: " + context.vmId() + " holds portal " + name + " " + grant.rights()
                    + (readOnly ? "; for ro=true grant it with portal:name=" + name + ",rights=ro" : "; drop ro=false"));
        }
        if (region.size() % ALIGN != 0 || grant.gpa() % ALIGN != 0) {
            throw new IllegalArgumentException("device virtio-pmem: portal " + name + " has " + region.size()
                    + " bytes; Linux maps pmem in 2 MiB steps, so create it with a multiple of 2M");
        }
        if (config.flag("dax", false)) {
            // Linux finds the block when it probes the namespace and makes it device DAX by itself.
            byte[] info;
            try {
                info = DeviceDaxInfo.block(name, region.size());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("device virtio-pmem: " + e.getMessage(), e);
            }
            MemorySegment.copy(MemorySegment.ofArray(info), 0, region.segment(), DeviceDaxInfo.OFFSET, info.length);
        }
        VirtioPmem.Backing backing = () -> {
            MemorySegment s = region.segment();
            if (!s.scope().isAlive()) {
                throw new IllegalStateException("portal " + name + " was deleted");
            }
            if (region.file().isPresent()) {
                s.force();                        // msync: the file holds what the guest wrote
            }
        };
        VirtioPmem pmem = new VirtioPmem(context.memory(), grant.gpa(), region.size(), readOnly, backing);
        LineCapture capture = new LineCapture(context);
        VirtioMmioTransport transport = VirtioMmioTransport.attach(capture, TYPE, pmem);
        AutoCloseable interrupt = capture.line == null ? null : portals.attachInterrupt(context.vmId(), name, capture.line);
        return new PmemDevice(transport, interrupt);
    }

    /** The transport as the VM's device; closing it withdraws the region's interrupt. */
    private record PmemDevice(VirtioMmioTransport transport, AutoCloseable interrupt) implements Device {
        @Override
        public String type() {
            return TYPE;
        }

        @Override
        public Record state() {
            return transport.state();
        }

        @Override
        public byte[] saveState() {
            return transport.saveState();
        }

        @Override
        public void restoreState(byte[] saved) {
            transport.restoreState(saved);
        }

        @Override
        public void close() {
            if (interrupt != null) {
                try {
                    interrupt.close();
                } catch (Exception e) {
                    // the portal bundle is going away with its links
                }
            }
        }
    }

    /** The VM's context, remembering the line the transport claims (it is also the region's interrupt). */
    static final class LineCapture implements DeviceContext {
        private final DeviceContext context;
        InterruptLine line;

        LineCapture(DeviceContext context) {
            this.context = context;
        }

        @Override
        public Optional<InterruptLine> claimIrq() {
            Optional<InterruptLine> l = context.claimIrq();
            line = l.orElse(null);
            return l;
        }

        @Override
        public Optional<InterruptLine> claimIrq(int gsi) {
            return context.claimIrq(gsi);
        }

        @Override
        public String vmId() {
            return context.vmId();
        }

        @Override
        public GuestMemory memory() {
            return context.memory();
        }

        @Override
        public List<SharedRam> sharedRam() {
            return context.sharedRam();
        }

        @Override
        public void claimPorts(int first, int count, PortDevice device) {
            context.claimPorts(first, count, device);
        }

        @Override
        public long claimMmio(long size, MmioDevice device) {
            return context.claimMmio(size, device);
        }

        @Override
        public SharedMapping mapPortal(String name, MemorySegment region, boolean readOnly, long doorbellGpa) {
            return context.mapPortal(name, region, readOnly, doorbellGpa);
        }

        @Override
        public SharedMapping mapPortal(String name, MemorySegment region, Optional<Path> file, boolean readOnly, long doorbellGpa) {
            return context.mapPortal(name, region, file, readOnly, doorbellGpa);
        }

        @Override
        public Optional<Doorbell> createDoorbell(long address, int length) {
            return context.createDoorbell(address, length);
        }

        @Override
        public Optional<Synic> claimSynic(SynicHost host) {
            return context.claimSynic(host);
        }

        @Override
        public void console(byte[] bytes, int offset, int length) {
            context.console(bytes, offset, length);
        }

        @Override
        public void exit(int status) {
            context.exit(status);
        }

        @Override
        public void reset(String how) {
            context.reset(how);
        }

        @Override
        public void fail(String reason) {
            context.fail(reason);
        }
    }
}
