package org.nxia.device.platform.internal;

import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.osgi.service.component.annotations.Component;

/** {@code i8042}: the keyboard controller's reset line (ports 0x60, 0x64). */
@Component(property = DeviceFactory.TYPE_PROPERTY + "=" + I8042Factory.TYPE)
public final class I8042Factory implements DeviceFactory {

    static final String TYPE = "i8042";

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String description() {
        return "i8042 controller: command 0xfe on port 0x64 resets (stops) the VM; no keyboard";
    }

    @Override
    public Device create(DeviceConfig config, DeviceContext context) {
        if (!config.parameters().isEmpty()) {
            throw new IllegalArgumentException("device i8042 takes no parameters, got " + config.parameters().keySet());
        }
        return new I8042(context);
    }
}
