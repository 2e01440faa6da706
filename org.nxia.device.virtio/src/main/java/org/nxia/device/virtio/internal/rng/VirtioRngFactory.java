package org.nxia.device.virtio.internal.rng;

import static org.nxia.device.virtio.internal.mmio.VirtioMmioTransport.NOTIFY_HELP;

import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.osgi.service.component.annotations.Component;

/** {@code virtio-rng}: entropy from the host's SecureRandom. */
@Component(property = DeviceFactory.TYPE_PROPERTY + "=virtio-rng")
public final class VirtioRngFactory implements DeviceFactory {

    @Override
    public String type() {
        return "virtio-rng";
    }

    @Override
    public String description() {
        return "virtio-rng over virtio-mmio: random bytes from the host's secure random source; " + NOTIFY_HELP;
    }

    @Override
    public Device create(DeviceConfig config, DeviceContext context) {
        return VirtioMmioTransport.attach(context, config, new VirtioRng(context.memory()));
    }
}
