package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.device.DeviceConfig;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * Issue 17: Debian's stock kernel, unmodified (linux-image-6.1.0-*-amd64, no
 * CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, virtio as modules), finds NXIA's devices through the ACPI
 * tables alone: its own modules, loaded from the initramfs distro/stock-kernel makes, bind the
 * DSDT's LNRO0005 devices; the agent comes up over virtio-vsock, runs programs, and a virtio-blk
 * disk reads back what the host wrote.
 */
@RunWith(HardwareVirtualizationRequirement.class)
@HardwareVirtualizationRequirement.NeedsStockKernel
@ExamReactorStrategy(PerClass.class)
public class StockKernelTest {

    @Inject
    SystemVms systemVms;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void debiansKernelFindsTheDevicesThroughAcpiAndRunsTheAgent() throws Exception {
        Path disk = Files.createTempFile("stock-disk", ".img");
        byte[] content = new byte[64 * 1024];
        for (int i = 0; i < content.length; i++) {
            content[i] = (byte) ('a' + i % 26);
        }
        Files.write(disk, content);
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.STOCK_KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.STOCK_INITRD_PROPERTY)))
                .withVcpus(1).withMemory(256L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT).withCmdline("loglevel=4")
                .withDevices(List.of(DeviceConfig.parse("virtio-blk:path=" + disk + ",ro=true"), DeviceConfig.parse("virtio-rng")));
        assertTrue("booted with ACPI: the only way this kernel finds virtio-mmio devices", profile.acpi());
        long t0 = System.nanoTime();
        try (SystemVm svm = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT)) {
            long bootMs = (System.nanoTime() - t0) / 1_000_000;
            AgentSession s = svm.session();
            ExecResult release = s.exec("/bin/busybox", "uname", "-r");
            assertTrue("Debian's kernel: " + release.stdoutText(), release.stdoutText().strip().endsWith("-amd64"));
            ExecResult cmdline = s.exec("/bin/busybox", "cat", "/proc/cmdline");
            assertTrue("no device on the command line: " + cmdline.stdoutText(), !cmdline.stdoutText().contains("virtio_mmio.device"));
            ExecResult acpi = s.exec("/bin/busybox", "sh", "-c", "ls /sys/bus/acpi/devices | grep LNRO0005");
            assertEquals("the DSDT's virtio-mmio devices, as ACPI shows them: " + acpi.stdoutText(), 3, acpi.stdoutText().lines().count());
            ExecResult read = s.exec("/bin/busybox", "sh", "-c", "head -c 65536 /dev/vda | md5sum; cat /sys/block/vda/size");
            String md5 = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("MD5").digest(content));
            assertEquals("the virtio-blk disk reads back the host's bytes: " + read.stderrText(), md5 + "  -\n128\n", read.stdoutText());
            ExecResult rng = s.exec("/bin/busybox", "cat", "/sys/class/misc/hw_random/rng_current");
            assertTrue("virtio-rng bound: " + rng.stdoutText(), rng.stdoutText().startsWith("virtio_rng"));
            ExecResult modules = s.exec("/bin/busybox", "cat", "/proc/modules");
            for (String m : Arrays.asList("virtio_mmio", "virtio_blk", "vmw_vsock_virtio_transport", "virtio_rng")) {
                assertTrue(m + " loaded: " + modules.stdoutText(), modules.stdoutText().contains(m + " "));
            }
            System.out.println("StockKernelTest: Debian " + release.stdoutText().strip() + " booted to the agent's session in " + bootMs
                    + " ms (emulated, one run); modules: " + modules.stdoutText().lines().map(l -> l.split(" ")[0]).toList());
        } finally {
            Files.deleteIfExists(disk);
        }
    }
}
