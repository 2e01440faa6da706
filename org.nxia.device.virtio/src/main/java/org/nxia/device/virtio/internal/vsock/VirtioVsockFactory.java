package org.nxia.device.virtio.internal.vsock;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.nxia.device.virtio.internal.mmio.VirtioMmioTransport.NOTIFY_HELP;

import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.device.virtio.vsock.VsockEndpoint;
import org.nxia.device.virtio.vsock.VsockListener;
import org.nxia.device.virtio.vsock.VsockStream;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.osgi.service.component.annotations.Component;

/** {@code virtio-vsock[:cid=3][,uds=PATH][,connect-ms=30000]}: stream sockets between the guest and host Unix sockets or Java code. */
@Component(property = DeviceFactory.TYPE_PROPERTY + "=virtio-vsock")
public final class VirtioVsockFactory implements DeviceFactory {

    @Override
    public String type() {
        return "virtio-vsock";
    }

    @Override
    public String description() {
        return "virtio-vsock over virtio-mmio, stream sockets: cid=3 (the guest's CID), uds=PATH (guest port P connects to PATH_P; clients of PATH send 'CONNECT <port>'), connect-ms=30000 (time a client has to send its CONNECT line and a connection to be answered), " + NOTIFY_HELP;
    }

    @Override
    public Device create(DeviceConfig config, DeviceContext context) {
        long cid = config.number("cid", 3, 3, 0xffff_fffeL);
        String name = config.get("uds", null);
        Path uds = null;
        if (name != null) {
            uds = Path.of(name).toAbsolutePath();
            Path dir = uds.getParent();
            if (dir == null || !Files.isDirectory(dir)) {
                throw new IllegalArgumentException("device virtio-vsock: uds=" + name + ": the directory " + dir + " does not exist");
            }
            if (Files.isRegularFile(uds) || Files.isDirectory(uds)) {
                throw new IllegalArgumentException("device virtio-vsock: uds=" + name + " exists and is not a socket");
            }
        }
        long connectMs = config.number("connect-ms", VirtioVsock.CONNECT_MILLIS, 10, 600_000);
        VirtioVsock vsock = new VirtioVsock(context.memory(), cid, uds, Duration.ofMillis(connectMs));
        try {
            vsock.open();
        } catch (IOException | RuntimeException e) {
            vsock.close();
            throw new IllegalArgumentException("device virtio-vsock: cannot listen on " + uds + " (" + e.getMessage() + ")");
        }
        VirtioMmioTransport transport;
        try {
            transport = VirtioMmioTransport.attach(context, config, vsock);
        } catch (RuntimeException e) {
            vsock.close();
            throw e;
        }
        vsock.start(transport);
        return new VsockDevice(transport, vsock);
    }

    /** The transport as the VM's device, and the host's end of its sockets. */
    private record VsockDevice(VirtioMmioTransport transport, VirtioVsock vsock) implements Device, VsockEndpoint {
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
        public long guestCid() {
            return vsock.guestCid();
        }

        @Override
        public VsockStream connect(int guestPort, Duration timeout) throws IOException {
            return vsock.connect(guestPort, timeout);
        }

        @Override
        public VsockListener listen(int hostPort) {
            return vsock.listen(hostPort);
        }

        @Override
        public void close() {
            transport.close();
            vsock.close();
        }
    }
}
