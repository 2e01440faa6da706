package org.nxia.shell.systemvm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.device.DeviceConfig;

class RootFsTest {

    @Test
    void theBaseIsTheFirstDiskReadOnlyAndTheAgentIsToldSo(@TempDir Path dir) throws Exception {
        Path image = Files.write(dir.resolve("rootfs,x=1.ext4"), new byte[4096]);
        LinuxProfile p = LinuxProfile.of(Path.of("bzImage"), Path.of("initrd")).withCmdline("quiet")
                .withDevices(List.of(DeviceConfig.parse("virtio-blk:path=/tmp/scratch.img"), DeviceConfig.parse("virtio-rng")));
        LinuxProfile r = RootFs.apply(p, image.toString());
        assertEquals("quiet nxia.root=/dev/vda", r.cmdline());
        assertEquals(3, r.devices().size());
        DeviceConfig base = r.devices().get(0);
        assertEquals("virtio-blk", base.type());
        assertEquals(image.toString(), base.get("path", null), "a path with ',' and '=' stays whole");
        assertTrue(base.flag("ro", false));
        assertEquals(p.devices(), r.devices().subList(1, 3));
    }

    @Test
    void noImageLeavesTheProfileAlone() {
        LinuxProfile p = LinuxProfile.of(Path.of("bzImage"), Path.of("initrd"));
        assertSame(p, RootFs.apply(p, ""));
    }

    @Test
    void aMissingImageIsRefusedWithTheWayToBuildOne(@TempDir Path dir) {
        LinuxProfile p = LinuxProfile.of(Path.of("bzImage"), Path.of("initrd"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RootFs.apply(p, dir.resolve("none").toString()));
        assertTrue(e.getMessage().contains("./nxia image rootfs"), e.getMessage());
    }
}
