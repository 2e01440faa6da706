package org.nxia.device.virtio.internal.blk;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.nxia.device.virtio.internal.mmio.VirtioMmioTransport.NOTIFY_HELP;

import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.osgi.service.component.annotations.Component;

/** {@code virtio-blk:path=disk.img[,ro=true]}: a disk over a raw image file or a block device. */
@Component(property = DeviceFactory.TYPE_PROPERTY + "=virtio-blk")
public final class VirtioBlkFactory implements DeviceFactory {

    @Override
    public String type() {
        return "virtio-blk";
    }

    @Override
    public String description() {
        return "virtio-blk over virtio-mmio on a raw image or block device: path=FILE (a multiple of 512 bytes), ro=false, " + NOTIFY_HELP;
    }

    @Override
    public Device create(DeviceConfig config, DeviceContext context) {
        String name = config.get("path", null);
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("device virtio-blk needs path=FILE (a raw disk image)");
        }
        boolean readOnly = config.flag("ro", false);
        Path path = Path.of(name);
        if (!Files.isRegularFile(path) && !isBlockDevice(path)) {
            throw new IllegalArgumentException("device virtio-blk: " + path + " is not a file or a block device; create one, e.g. truncate -s 64M " + path);
        }
        FileChannel channel;
        long size;
        try {
            channel = readOnly ? FileChannel.open(path, StandardOpenOption.READ)
                    : FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
            size = channel.size();
        } catch (IOException e) {
            throw new IllegalArgumentException("device virtio-blk: cannot open " + path + (readOnly ? "" : " for writing")
                    + " (" + e.getMessage() + ")" + (readOnly ? "" : "; give ro=true for a read-only disk"));
        }
        if (size < VirtioBlk.SECTOR) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // nothing was written
            }
            throw new IllegalArgumentException("device virtio-blk: " + path + " has " + size + " bytes; a disk needs at least one 512-byte sector");
        }
        VirtioBlk blk = new VirtioBlk(context.memory(), channel, size, readOnly, path);
        try {
            return new ClosingDevice(VirtioMmioTransport.attach(context, config, blk), blk);
        } catch (RuntimeException e) {
            try {
                blk.close();
            } catch (IOException ignored) {
                // nothing was written
            }
            throw e;
        }
    }

    /** The transport as the VM's device, closing the image file with it. */
    private record ClosingDevice(VirtioMmioTransport transport, VirtioBlk blk) implements Device {
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
            try {
                blk.close();
            } catch (IOException ignored) {
                // the VM is going away; a failed close loses nothing that a flush had not saved
            }
        }
    }

    /** A block device (the rig's virtio drive, a loop device): the JDK sizes it with BLKGETSIZE64. */
    static boolean isBlockDevice(Path path) {
        try {
            return ((Integer) Files.getAttribute(path, "unix:mode") & 0170000) == 0060000;
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return false;
        }
    }
}
