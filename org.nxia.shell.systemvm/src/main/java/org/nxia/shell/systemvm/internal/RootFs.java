package org.nxia.shell.systemvm.internal;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.device.DeviceConfig;

/**
 * The System VM's Debian root ({@code distro/rootfs/build.sh}): the shared base
 * image as the first virtio-blk disk, opened read-only, so the guest sees it as
 * {@code /dev/vda}; {@code nxia.root=/dev/vda} tells the agent to mount it under
 * an overlay whose upper layer is this VM's own (docs/linux-vm.md, "Root file system").
 */
final class RootFs {

    static final String DEVICE = "/dev/vda";

    private RootFs() {
    }

    /** {@code profile} booting from {@code image}; {@code profile} itself when {@code image} is empty. */
    static LinuxProfile apply(LinuxProfile profile, String image) {
        if (image.isEmpty()) {
            return profile;
        }
        Path path = Path.of(image);
        if (!Files.isReadable(path)) {
            throw new IllegalArgumentException("cannot read the root file system image " + image + " (./nxia image rootfs builds one)");
        }
        Map<String, String> params = new LinkedHashMap<>();
        params.put("path", path.toString());
        params.put("ro", "true");  // ten VMs share one base: none may write it
        List<DeviceConfig> devices = new ArrayList<>();
        devices.add(new DeviceConfig("virtio-blk", params));  // first disk: /dev/vda
        devices.addAll(profile.devices());
        String cmdline = profile.cmdline().isBlank() ? "nxia.root=" + DEVICE : profile.cmdline() + " nxia.root=" + DEVICE;
        return profile.withDevices(devices).withCmdline(cmdline);
    }
}
