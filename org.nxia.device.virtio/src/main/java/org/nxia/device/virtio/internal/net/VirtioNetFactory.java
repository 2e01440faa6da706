package org.nxia.device.virtio.internal.net;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Pattern;

import static org.nxia.device.virtio.internal.mmio.VirtioMmioTransport.NOTIFY_HELP;

import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.osgi.service.component.annotations.Component;

/**
 * {@code virtio-net[:forward=8080:80;8443:443][,backend=passt][,mac=..]}: a
 * network card whose other end is a passt the VMM starts for the VM.
 */
@Component(property = DeviceFactory.TYPE_PROPERTY + "=virtio-net")
public final class VirtioNetFactory implements DeviceFactory {

    static final Path PASST = Path.of("/usr/bin/passt");
    private static final Pattern FORWARD = Pattern.compile("(\\d{1,5})(?::(\\d{1,5}))?");
    private static final Pattern MAC = Pattern.compile("\\p{XDigit}{2}(:\\p{XDigit}{2}){5}");
    private static final Pattern IPV4 = Pattern.compile("(\\d{1,3}\\.){3}\\d{1,3}");

    @Override
    public String type() {
        return "virtio-net";
    }

    @Override
    public String description() {
        return "virtio-net over virtio-mmio with passt (user-mode networking, DHCP; no privileges): "
                + "forward=HOST:GUEST[;HOST:GUEST...] (TCP ports from the host to the guest), "
                + "mac=02:4e:58:.. (default from the VM id), backend=passt|tap:IFNAME, passt=/usr/bin/passt, "
                + "address=A.B.C.D/PREFIX, gateway=A.B.C.D, interface=IF (what passt assigns and copies, "
                + "for a host without a default route), " + NOTIFY_HELP;
    }

    @Override
    public Device create(DeviceConfig config, DeviceContext context) {
        String backend = config.get("backend", "passt");
        TxFrames tx = new TxFrames(VirtioNet.TX_FRAMES);
        VirtioNet net = new VirtioNet(context.memory(), mac(config, context.vmId()), tx);
        NetBackend host;
        if (backend.equals("passt")) {
            Path binary = Path.of(config.get("passt", PASST.toString()));
            if (!Files.isExecutable(binary)) {
                throw new IllegalArgumentException("device virtio-net: " + binary + " is not an executable; install passt "
                        + "(apt-get install passt, or tools/need.sh)");
            }
            List<String> options = passtOptions(config);
            try {
                host = new Passt(context.vmId() + "-net", binary, options, net, tx);
            } catch (IOException e) {
                throw new IllegalArgumentException("device virtio-net: cannot make passt's private directory (" + e.getMessage() + ")");
            }
        } else if (backend.startsWith("tap:")) {
            try {
                host = new Tap(context.vmId() + "-net", new Tun(backend.substring(4)), net, tx);
            } catch (IOException e) {
                throw new IllegalArgumentException("device virtio-net: backend=" + backend + ": " + e.getMessage());
            }
        } else {
            throw new IllegalArgumentException("device virtio-net: backend=" + backend + " is not a backend; give backend=passt "
                    + "(the default) or backend=tap:IFNAME (an existing TAP interface, or root to make one)");
        }
        VirtioMmioTransport transport;
        try {
            transport = VirtioMmioTransport.attach(context, config, net);
        } catch (RuntimeException e) {
            host.close();
            throw e;
        }
        host.start(transport);
        return new NetDevice(transport, host);
    }

    /** passt's options from the device's parameters, each checked. */
    static List<String> passtOptions(DeviceConfig config) {
        List<String> options = new ArrayList<>();
        String forward = config.get("forward", "");
        if (!forward.isBlank()) {
            for (String f : forward.split("[; ]+")) {
                var m = FORWARD.matcher(f);
                if (!m.matches() || !port(m.group(1)) || (m.group(2) != null && !port(m.group(2)))) {
                    throw new IllegalArgumentException("device virtio-net: forward=" + f
                            + " is not HOST:GUEST (TCP ports 1..65535), e.g. forward=8080:80");
                }
                options.add("-t");
                options.add(f);
            }
        }
        String address = config.get("address", null);
        String gateway = config.get("gateway", null);
        String iface = config.get("interface", null);
        if (address != null) {
            String[] parts = address.split("/", 2);
            if (!IPV4.matcher(parts[0]).matches() || parts.length < 2 || !parts[1].matches("\\d{1,2}")
                    || Integer.parseInt(parts[1]) > 32 || Integer.parseInt(parts[1]) < 1) {
                throw new IllegalArgumentException("device virtio-net: address=" + address + " is not A.B.C.D/PREFIX, e.g. 10.0.2.15/24");
            }
            options.addAll(List.of("-4", "-a", parts[0], "-n", parts[1]));
        }
        if (gateway != null) {
            if (!IPV4.matcher(gateway).matches()) {
                throw new IllegalArgumentException("device virtio-net: gateway=" + gateway + " is not A.B.C.D");
            }
            options.addAll(List.of("-g", gateway));
        }
        if (iface != null) {
            if (!iface.matches("[A-Za-z0-9_.-]{1,15}")) {
                throw new IllegalArgumentException("device virtio-net: interface=" + iface + " is not an interface name");
            }
            // WHY: passt takes its own MAC address from the template interface, and lo has none.
            options.addAll(List.of("-i", iface, "-M", "9a:55:9a:55:9a:55"));
        }
        return options;
    }

    private static boolean port(String p) {
        int n = Integer.parseInt(p);
        return n >= 1 && n <= 65535;
    }

    /** {@code mac=}, or a locally administered address from the VM id (stable for a VM, distinct between VMs). */
    static byte[] mac(DeviceConfig config, String vmId) {
        String given = config.get("mac", null);
        if (given != null) {
            if (!MAC.matcher(given).matches()) {
                throw new IllegalArgumentException("device virtio-net: mac=" + given + " is not six hex bytes, e.g. 52:54:00:12:34:56");
            }
            byte[] mac = HexFormat.ofDelimiter(":").parseHex(given);
            if ((mac[0] & 1) != 0) {
                throw new IllegalArgumentException("device virtio-net: mac=" + given + " is a multicast address");
            }
            return mac;
        }
        try {
            byte[] h = MessageDigest.getInstance("SHA-256").digest(vmId.getBytes(StandardCharsets.UTF_8));
            return new byte[] {0x02, 0x4e, 0x58, h[0], h[1], h[2]};   // 02: locally administered, unicast
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The transport as the VM's device; closing it ends the backend (passt, or the TAP fd). */
    private record NetDevice(VirtioMmioTransport transport, NetBackend backend) implements Device {
        @Override
        public String type() {
            return transport.type();
        }

        @Override
        public Record state() {
            return new State(transport.state(), backend.state());
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
            backend.close();
        }
    }

    /** The transport's state (with the device's counters) and the backend's. */
    record State(Record transport, Record backend) {
    }
}
