package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.device.virtio.internal.blk.VirtioBlkFactory;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;

/** What {@code virtio-blk:path=...} takes and refuses, before a guest sees the disk. */
class VirtioBlkFactoryTest {

    @TempDir
    Path dir;

    private final VirtioDevicesTest.Context ctx = new VirtioDevicesTest.Context();
    private final VirtioBlkFactory factory = new VirtioBlkFactory();

    private IllegalArgumentException refused(String spec) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> factory.create(DeviceConfig.parse(spec), ctx));
        assertEquals(0, ctx.windows.size(), "a refused disk claims no window");
        return e;
    }

    @Test
    void theFactoryNamesItsTypeAndParameters() {
        assertEquals("virtio-blk", factory.type());
        assertTrue(factory.description().contains("path=FILE"), factory.description());
    }

    @Test
    void aDiskNeedsAPath() {
        assertEquals("device virtio-blk needs path=FILE (a raw disk image)", refused("virtio-blk").getMessage());
        assertEquals("device virtio-blk needs path=FILE (a raw disk image)", refused("virtio-blk:path= ").getMessage());
    }

    @Test
    void aDiskHasAtLeastOneSector() throws Exception {
        Path small = Files.write(dir.resolve("small.img"), new byte[511]);
        assertTrue(refused("virtio-blk:path=" + small).getMessage().contains("has 511 bytes; a disk needs at least one 512-byte sector"));
        Path one = Files.write(dir.resolve("one.img"), new byte[512]);
        Device d = factory.create(DeviceConfig.parse("virtio-blk:path=" + one), ctx);
        assertEquals("virtio-blk", d.type());
        assertEquals(1, ctx.windows.getLast().read(VirtioMmioTransport.CONFIG, 8), "one sector");
        d.close();
    }

    @Test
    void aDiskThatCannotBeWrittenNeedsRoTrue() throws Exception {
        Path locked = Files.write(dir.resolve("locked.img"), new byte[512]);
        Files.setPosixFilePermissions(locked, PosixFilePermissions.fromString("r--r--r--"));
        // root writes a read-only file anyway, but not an immutable one (CI runs as root)
        boolean immutable = Files.isWritable(locked) && chattr("+i", locked);
        try {
            org.junit.jupiter.api.Assumptions.assumeTrue(!Files.isWritable(locked) || immutable,
                    "running as root where chattr +i does not work: no file here refuses writing");
            assertTrue(refused("virtio-blk:path=" + locked).getMessage().contains("give ro=true"));
            Device d = factory.create(DeviceConfig.parse("virtio-blk:path=" + locked + ",ro=true"), ctx);
            assertEquals(1, ctx.windows.getLast().read(VirtioMmioTransport.CONFIG, 8), "opened read-only: one sector");
            d.close();
        } finally {
            if (immutable) {
                chattr("-i", locked);   // else the temporary directory cannot be removed
            }
        }
    }

    /** Runs chattr FLAG on the file; whether it worked (not every file system or user can). */
    private static boolean chattr(String flag, Path file) throws Exception {
        try {
            Process p = new ProcessBuilder("chattr", flag, file.toString()).redirectErrorStream(true).start();
            p.getInputStream().transferTo(java.io.OutputStream.nullOutputStream());
            return p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (java.io.IOException e) {
            return false;   // no chattr
        }
    }
}
