package org.nxia.device.vmbus.internal;

import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;

import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;

/** {@code vmbus}: the VMBus server of a Hyper-V partition (a Linux profile with {@code hyperv=true} gets one). */
@Component(property = DeviceFactory.TYPE_PROPERTY + "=" + VmbusFactory.TYPE)
public final class VmbusFactory implements DeviceFactory {

    static final String TYPE = "vmbus";

    /** The heartbeats of every VM this factory serves: one thread, gone with the component. */
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(
            r -> Thread.ofPlatform().daemon().name("nxia-vmbus-timer").unstarted(r));

    @Deactivate
    void deactivate() {
        timer.shutdownNow();
    }

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String description() {
        return "VMBus server of a Hyper-V partition: version negotiation (5.0 to 5.3), offers (none yet), unload";
    }

    @Override
    public Device create(DeviceConfig config, DeviceContext context) {
        if (!config.parameters().isEmpty()) {
            throw new IllegalArgumentException("device vmbus takes no parameters, got " + config.parameters().keySet());
        }
        return VmbusServer.serve(context, timer);
    }
}
