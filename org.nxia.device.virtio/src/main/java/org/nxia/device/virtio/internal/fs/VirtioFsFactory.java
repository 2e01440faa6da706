package org.nxia.device.virtio.internal.fs;

import static org.nxia.device.virtio.internal.mmio.VirtioMmioTransport.NOTIFY_HELP;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.osgi.service.component.annotations.Component;

/** {@code virtio-fs}: a host directory the guest mounts ({@code mount -t virtiofs TAG DIR}), served by Debian's virtiofsd. */
@Component(property = DeviceFactory.TYPE_PROPERTY + "=virtio-fs")
public final class VirtioFsFactory implements DeviceFactory {

    @Override
    public String type() {
        return "virtio-fs";
    }

    @Override
    public String description() {
        return "virtio-fs over virtio-mmio: path=DIR (a host directory, required), tag=NAME (what the guest mounts, default 'host'),"
                + " cache=auto|always|none (default auto), sandbox=namespace|chroot (virtiofsd's, default namespace); served by"
                + " Debian's virtiofsd (qemu-system-common); a VM with it cannot be saved in a snapshot; " + NOTIFY_HELP;
    }

    @Override
    public Device create(DeviceConfig config, DeviceContext context) {
        String path = config.get("path", "");
        if (path.isEmpty() || !Path.of(path).isAbsolute() || !Files.isDirectory(Path.of(path))) {
            throw new IllegalArgumentException("device virtio-fs: path=" + path + " is not an absolute path of a host directory");
        }
        String cache = config.get("cache", "auto");
        if (!Virtiofsd.CACHE_MODES.contains(cache)) {
            throw new IllegalArgumentException("device virtio-fs: cache=" + cache + " is not one of " + Virtiofsd.CACHE_MODES);
        }
        String sandbox = config.get("sandbox", "namespace");
        if (!Virtiofsd.SANDBOXES.contains(sandbox)) {
            throw new IllegalArgumentException("device virtio-fs: sandbox=" + sandbox + " is not one of " + Virtiofsd.SANDBOXES);
        }
        VirtioFs fs;
        try {
            fs = VirtioFs.start(context.vmId(), config.get("tag", "host"), Path.of(path), cache, sandbox, context.sharedRam());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("device virtio-fs: interrupted while virtiofsd started", e);
        }
        try {
            VirtioMmioTransport transport = VirtioMmioTransport.attach(context, config, fs);
            fs.transport(transport);
            return new FsDevice(transport, fs);
        } catch (RuntimeException e) {
            fs.close();
            throw e;
        }
    }

    /** The transport and the daemon behind it; no snapshot (virtiofsd's open files are not in one). */
    private record FsDevice(VirtioMmioTransport transport, VirtioFs fs) implements Device {
        @Override
        public String type() {
            return transport.type();
        }

        @Override
        public Record state() {
            return transport.state();
        }

        @Override
        public void close() {
            transport.close();
            fs.close();
        }
    }
}
