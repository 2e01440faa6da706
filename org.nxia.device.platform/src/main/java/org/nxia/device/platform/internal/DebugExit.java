package org.nxia.device.platform.internal;

import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.api.device.PortDevice;
import org.nxia.vmm.api.device.SavedStateCodec;
import org.osgi.service.component.annotations.Component;

/**
 * {@code debug-exit[:port=0xf4]}: a write to the port ends the VM with the
 * written value as its exit status (test guests and firmware use it).
 */
@Component(property = DeviceFactory.TYPE_PROPERTY + "=" + DebugExit.TYPE)
public final class DebugExit implements DeviceFactory {

    static final String TYPE = "debug-exit";

    record State(int port) {
    }

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String description() {
        return "debug exit: a write ends the VM with that value as its exit status; port=0xf4";
    }

    @Override
    public Device create(DeviceConfig config, DeviceContext context) {
        int port = (int) config.number("port", 0xf4, 0, 0xffff);
        context.claimPorts(port, 1, new PortDevice() {
            @Override
            public void write(int p, int size, int value) {
                context.exit(value);
            }

            @Override
            public int read(int p, int size) {
                return -1;
            }
        });
        State state = new State(port);
        return new Device() {
            @Override
            public String type() {
                return TYPE;
            }

            @Override
            public Record state() {
                return state;
            }

            /** Nothing but the kind: the port is configuration, and a write leaves nothing behind. */
            @Override
            public byte[] saveState() {
                return SavedStateCodec.writer(TYPE, 1).toBytes();
            }

            @Override
            public void restoreState(byte[] saved) {
                SavedStateCodec.reader(saved, TYPE, 1).end();
            }
        };
    }
}
