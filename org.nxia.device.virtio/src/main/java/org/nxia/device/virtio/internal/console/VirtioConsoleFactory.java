package org.nxia.device.virtio.internal.console;

import static org.nxia.device.virtio.internal.mmio.VirtioMmioTransport.NOTIFY_HELP;

import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.api.device.SerialPort;
import org.osgi.service.component.annotations.Component;

/** {@code virtio-console}: one port; output to the VM console, input from the host (SerialPort). */
@Component(property = DeviceFactory.TYPE_PROPERTY + "=virtio-console")
public final class VirtioConsoleFactory implements DeviceFactory {

    @Override
    public String type() {
        return "virtio-console";
    }

    @Override
    public String description() {
        return "virtio-console over virtio-mmio, one port: output to the VM console, input from the host (SerialPort); " + NOTIFY_HELP;
    }

    @Override
    public Device create(DeviceConfig config, DeviceContext context) {
        VirtioConsole console = new VirtioConsole(context.memory(), context);
        return new ConsoleDevice(VirtioMmioTransport.attach(context, config, console), console);
    }

    /** The transport as a device the host can type into. */
    private record ConsoleDevice(VirtioMmioTransport transport, VirtioConsole console) implements Device, SerialPort {
        @Override
        public String type() {
            return transport.type();
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
            transport.close();
        }

        @Override
        public void send(byte[] bytes) {
            transport.locked(() -> {
                console.send(bytes);
                transport.usedBuffers();
            });
        }
    }
}
