package org.nxia.shell.systemvm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.api.device.DeviceConfig;

/** vm:exec --share DIR: the virtio-fs device it adds, and the directories it refuses. */
class ShareOptionTest {

    @TempDir
    Path dir;

    @Test
    void aHostDirectoryBecomesAVirtioFsDeviceTaggedHostWithItsAbsolutePath() throws Exception {
        Path project = Files.createDirectories(dir.resolve("project"));
        DeviceConfig d = SystemVmCommands.shareDevice(project.toString());
        assertEquals("virtio-fs", d.type());
        assertEquals(Map.of("path", project.toAbsolutePath().normalize().toString(), "tag", SystemVmCommands.SHARE_TAG), d.parameters());
    }

    @Test
    void aMissingDirectoryOrOneThatCannotBeAParameterIsRefused() throws Exception {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SystemVmCommands.shareDevice(dir.resolve("none").toString()))
                .getMessage().contains("no such directory"));
        Path file = Files.writeString(dir.resolve("file"), "x");
        assertThrows(IllegalArgumentException.class, () -> SystemVmCommands.shareDevice(file.toString()));
        Path comma = Files.createDirectories(dir.resolve("a,b"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SystemVmCommands.shareDevice(comma.toString()))
                .getMessage().contains("','"));
    }
}
