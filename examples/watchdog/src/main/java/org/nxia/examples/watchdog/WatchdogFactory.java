package org.nxia.examples.watchdog;

import java.util.concurrent.ScheduledThreadPoolExecutor;

import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;

/**
 * The {@code watchdog} device type: {@code watchdog[:port=0x600,timeout=1000]}. One host thread
 * checks every watchdog of every VM; it ends with this bundle, so nothing of it outlives an undeploy.
 */
@Component(property = DeviceFactory.TYPE_PROPERTY + "=" + WatchdogFactory.TYPE)
public final class WatchdogFactory implements DeviceFactory {

    static final String TYPE = "watchdog";
    static final int DEFAULT_PORT = 0x600;
    static final long DEFAULT_TIMEOUT_MS = 1000;

    private final ScheduledThreadPoolExecutor checker;

    @Activate
    public WatchdogFactory() {
        checker = new ScheduledThreadPoolExecutor(1, r -> Thread.ofPlatform().name("nxia-watchdog").daemon(true).unstarted(r));
        checker.setRemoveOnCancelPolicy(true);   // a closed watchdog's check goes at once, not at its next run
    }

    @Deactivate
    void deactivate() {
        checker.shutdownNow();
    }

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String description() {
        return "resets the VM when the guest stops petting it (example; port=0x600, timeout=1000 ms from 10 to 60000)";
    }

    @Override
    public Device create(DeviceConfig config, DeviceContext context) {
        int port = (int) config.number("port", DEFAULT_PORT, 0, 0xffff);
        long timeoutMs = config.number("timeout", DEFAULT_TIMEOUT_MS, 10, 60_000);
        return new Watchdog(port, timeoutMs, context, checker);
    }
}
