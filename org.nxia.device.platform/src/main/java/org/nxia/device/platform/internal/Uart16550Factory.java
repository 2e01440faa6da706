package org.nxia.device.platform.internal;

import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.osgi.service.component.annotations.Component;

/** {@code uart[:port=0x3f8,irq=4]}: a 16550A serial port. */
@Component(property = DeviceFactory.TYPE_PROPERTY + "=" + Uart16550Factory.TYPE)
public final class Uart16550Factory implements DeviceFactory {

    static final String TYPE = "uart";

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String description() {
        return "16550A UART; output to the VM console, input from the host (SerialPort); port=0x3f8 (COM1), irq=4 (used where the VM has interrupts)";
    }

    @Override
    public Device create(DeviceConfig config, DeviceContext context) {
        int port = (int) config.number("port", 0x3f8, 0, 0xfff8);
        int irq = (int) config.number("irq", 4, 0, 23);
        return new Uart16550(port, irq, context);
    }
}
