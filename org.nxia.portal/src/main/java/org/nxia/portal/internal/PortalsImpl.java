package org.nxia.portal.internal;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Pattern;

import org.nxia.portal.api.DoorbellLink;
import org.nxia.portal.api.PortalMapping;
import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.Portals;
import org.nxia.portal.api.Rights;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;

/**
 * The region registry and the {@code portal} device type: a VM profile that
 * lists {@code portal:name=<region>,rights=ro|rw} holds the capability for that
 * region, and the region is mapped when the VM is created.
 */
@Component(service = {Portals.class, DeviceFactory.class}, property = DeviceFactory.TYPE_PROPERTY + "=" + PortalsImpl.TYPE)
public final class PortalsImpl implements Portals, DeviceFactory {

    static final String TYPE = "portal";
    /** Largest region: the micro-VM portal window (256 MiB). */
    static final long MAX_SIZE = 256L << 20;
    private static final Pattern NAME = Pattern.compile(NAME_PATTERN);

    private final Map<String, Region> regions = new ConcurrentHashMap<>();
    private final List<Grant> grants = new CopyOnWriteArrayList<>();
    private final List<Link> links = new CopyOnWriteArrayList<>();

    @Deactivate
    void deactivate() {
        for (Region r : regions.values()) {
            r.close();
        }
        regions.clear();
    }

    @Override
    public synchronized PortalRegion create(String name, long size, String owner, Rights rights, Path file) {
        if (name == null || !NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("'" + name + "' is not a portal name: 1 to 15 of a-z, 0-9, _ and -, starting with a letter or digit");
        }
        if (size <= 0 || size % Region.PAGE != 0 || size > MAX_SIZE) {
            throw new IllegalArgumentException("portal " + name + ": size " + size + " must be a multiple of 4 KiB from 4K to 256M");
        }
        if (regions.containsKey(name)) {
            throw new IllegalArgumentException("portal " + name + " exists already (portal:list shows the regions)");
        }
        Region r = Region.open(name, size, owner == null ? "" : owner, rights == null ? Rights.RW : rights, file);
        regions.put(name, r);
        return r;
    }

    @Override
    public Optional<PortalRegion> find(String name) {
        return Optional.ofNullable(regions.get(name));
    }

    @Override
    public List<PortalRegion> list() {
        List<PortalRegion> out = new ArrayList<>(regions.values());
        out.sort(Comparator.comparing(PortalRegion::name));
        return out;
    }

    @Override
    public synchronized boolean delete(String name) {
        Region r = regions.get(name);
        if (r == null) {
            return false;
        }
        for (Grant g : grants) {
            if (g.region().equals(name) && g.mapped()) {
                throw new IllegalStateException("portal " + name + " is mapped into " + g.vmId() + "; unmap it or destroy the VM first");
            }
        }
        regions.remove(name);
        r.close();
        return true;
    }

    @Override
    public List<PortalMapping> mappings() {
        return List.copyOf(grants);
    }

    @Override
    public synchronized PortalMapping map(String vmId, String region) {
        Grant g = grant(vmId, region);
        Region r = regions.get(region);
        if (r == null) {
            throw new IllegalArgumentException("no portal " + region + " (portal:create makes one)");
        }
        g.map(r);
        return g;
    }

    @Override
    public synchronized PortalMapping unmap(String vmId, String region) {
        Grant g = grant(vmId, region);
        if (!g.unmap()) {
            throw new IllegalArgumentException("portal " + region + " is not mapped into " + vmId);
        }
        return g;
    }

    private Grant grant(String vmId, String region) {
        for (Grant g : grants) {
            if (g.vmId().equals(vmId) && g.region().equals(region)) {
                return g;
            }
        }
        throw new IllegalArgumentException(vmId + " has no capability for portal " + region
                + ": its profile must list the device portal:name=" + region + ",rights=ro|rw");
    }

    @Override
    public synchronized AutoCloseable attachInterrupt(String vmId, String region, InterruptLine line) {
        if (line == null) {
            throw new IllegalArgumentException("attachInterrupt needs a line");
        }
        return grant(vmId, region).attachInterrupt(line);
    }

    @Override
    public void ring(String vmId, String region) {
        InterruptLine line;
        synchronized (this) {
            line = grant(vmId, region).interrupt();
        }
        if (line == null) {
            throw new IllegalArgumentException(vmId + " has no interrupt for portal " + region
                    + ": only a VM that shows the region through a device (virtio-pmem:region=" + region + ") has one");
        }
        line.pulse();
    }

    @Override
    public synchronized DoorbellLink connect(String fromVm, String toVm, String region) {
        if (fromVm.equals(toVm)) {
            throw new IllegalArgumentException("a doorbell connects two VMs; " + fromVm + " is both");
        }
        Grant from = grant(fromVm, region);
        Grant to = grant(toVm, region);
        InterruptLine line = to.interrupt();
        if (line == null) {
            throw new IllegalArgumentException(toVm + " has no interrupt for portal " + region
                    + ": only a VM that shows the region through a device (a Linux VM's virtio-pmem:region=" + region
                    + ") takes one; a micro-VM's guest polls");
        }
        for (Link l : links) {
            if (l.from() == from) {
                throw new IllegalArgumentException(fromVm + "'s doorbell for " + region + " is already connected to " + l.toVm()
                        + " (portal:disconnect first)");
            }
        }
        Link link = Link.open(this, from, to, line);
        links.add(link);
        return link;
    }

    @Override
    public List<DoorbellLink> links() {
        return List.copyOf(links);
    }

    void forget(Link link) {
        links.remove(link);
    }

    void closeLinksTo(Grant g) {
        for (Link l : links) {
            if (l.to() == g) {
                l.close();
            }
        }
    }

    void forget(Grant g) {
        for (Link l : links) {
            if (l.from() == g || l.to() == g) {
                l.close();
            }
        }
        grants.remove(g);
    }

    // ---- DeviceFactory ----

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String description() {
        return "Portal shared memory: the capability to map a region (name=<region>, rights=ro|rw, default rw) and its doorbell";
    }

    @Override
    public synchronized Device create(DeviceConfig config, DeviceContext context) {
        for (String key : config.parameters().keySet()) {
            if (!key.equals("name") && !key.equals("rights")) {
                throw new IllegalArgumentException("device portal: unknown parameter '" + key + "' (name, rights)");
            }
        }
        String name = config.get("name", null);
        if (name == null) {
            throw new IllegalArgumentException("device portal needs name=<region>, e.g. portal:name=ring,rights=rw");
        }
        Rights rights = Rights.parse(config.get("rights", "rw"));
        Region r = regions.get(name);
        if (r == null) {
            throw new IllegalArgumentException("device portal: no portal " + name + " (portal:create makes one)");
        }
        if (!r.rights().allows(rights)) {
            throw new IllegalArgumentException("device portal: " + name + " allows VMs at most " + r.rights() + ", the profile asks " + rights);
        }
        for (Grant g : grants) {
            if (g.vmId().equals(context.vmId()) && g.region().equals(name)) {
                throw new IllegalArgumentException("device portal: " + name + " is listed twice for " + context.vmId());
            }
        }
        Grant g = new Grant(this, context, name, rights);
        g.map(r);
        grants.add(g);
        return g;
    }
}
