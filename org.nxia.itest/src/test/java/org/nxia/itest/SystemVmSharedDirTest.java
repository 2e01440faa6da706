package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import javax.inject.Inject;

import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TestRule;
import org.junit.runner.RunWith;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ExecResult;
import org.nxia.control.api.SystemVm;
import org.nxia.control.api.SystemVms;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * The System VM on real KVM with a host directory (virtio-fs, served by Debian's virtiofsd) and
 * with ACPI tables instead of command-line devices.
 */
@RunWith(HardwareVirtualizationRequirement.class)
@HardwareVirtualizationRequirement.NeedsKernel
@ExamReactorStrategy(PerClass.class)
public class SystemVmSharedDirTest {

    @Inject
    SystemVms systemVms;

    @Inject
    org.apache.felix.service.command.CommandProcessor processor;

    @Inject
    VmManager vms;

    /** Where everything waits, printed shortly before vmExecShareShowsTheHostDirectoryAtMntHost's limit (and in any test that long). */
    @Rule
    public final TestRule hangDump = HangDump.rule(Duration.ofSeconds(225), this::vmsAndDevices);

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    private static LinuxProfile profile() {
        return LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withVcpus(1).withMemory(256L << 20).withTimeout(LinuxBootTest.BOOT_LIMIT);
    }

    private static ExecResult sh(AgentSession s, String script) throws Exception {
        return s.exec("/bin/busybox", "sh", "-c", script);
    }

    @Test
    public void theGuestMountsAHostDirectoryReadsItsFilesAndWritesNewOnes() throws Exception {
        Path shared = Files.createTempDirectory("nxia-shared-");
        Files.writeString(shared.resolve("from-host.txt"), "written on the host\n");
        LinuxProfile profile = profile().withDevices(List.of(DeviceConfig.parse("virtio-fs:path=" + shared + ",tag=project")));
        try (SystemVm svm = systemVms.boot(profile, LinuxBootTest.BOOT_LIMIT)) {
            AgentSession s = svm.session();
            ExecResult mount = sh(s, "mkdir -p /tmp/project && mount -t virtiofs project /tmp/project && cat /tmp/project/from-host.txt"
                    + " && echo 'written in the guest' > /tmp/project/from-guest.txt && sync");
            assertEquals(mount.stderrText() + "; the guest's virtio devices and log: "
                    + sh(s, "cat /sys/bus/virtio/devices/*/device; dmesg | grep -i -E 'virtio|fuse'").stdoutText(), 0, mount.status().code());
            assertEquals("written on the host\n", mount.stdoutText());
            assertEquals("written in the guest\n", Files.readString(shared.resolve("from-guest.txt")));
            System.out.println("SystemVmSharedDirTest: " + sh(s, "grep virtiofs /proc/mounts").stdoutText().strip());
        }
    }

    /** With a limit: it hung in some rig runs (issue 14 §3); the failure then shows where ({@link #hangDump}). */
    @Test(timeout = 240_000)
    public void vmExecShareShowsTheHostDirectoryAtMntHost() throws Exception {
        Path shared = Files.createTempDirectory("nxia-share-");
        Files.writeString(shared.resolve("notes.txt"), "shared with vm:exec --share\n");
        Gogo.Run run = Gogo.run(processor, "vm:exec --share " + shared + " -k " + System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)
                + " -r " + System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY) + " cat /mnt/host/notes.txt");
        assertEquals(run.output(), 0, run.exit());
        assertTrue(run.output(), run.output().contains("shared with vm:exec --share"));
    }

    /** Each VM here: its state, its devices' counters and the end of its console. */
    private String vmsAndDevices() {
        StringBuilder b = new StringBuilder();
        for (VirtualMachine vm : vms.list()) {
            b.append("VM ").append(vm.id()).append(' ').append(vm.state()).append(", result ").append(vm.result()).append('\n');
            for (Device d : vm.devices()) {
                b.append("  ").append(d.state()).append('\n');
            }
            String console = vm.console();
            b.append("  console (end):\n").append(console.substring(Math.max(0, console.length() - 3000))).append('\n');
        }
        return b.isEmpty() ? "no VM" : b.toString();
    }

    @Test
    public void withAcpiTheKernelFindsItsDevicesInTheDsdtAndTheAgentComesUp() throws Exception {
        try (SystemVm svm = systemVms.boot(profile().withAcpi(true), LinuxBootTest.BOOT_LIMIT)) {
            AgentSession s = svm.session();   // the agent's vsock is a virtio-mmio device: found through ACPI
            String cmdline = sh(s, "cat /proc/cmdline").stdoutText();
            assertFalse("no device on the command line: " + cmdline, cmdline.contains("virtio_mmio.device="));
            ExecResult acpi = sh(s, "cat /sys/bus/acpi/devices/*/hid 2>/dev/null | sort | uniq -c; dmesg | grep -i -m3 'ACPI: RSDP\\|ACPI: DSDT'");
            System.out.println("SystemVmSharedDirTest ACPI: " + acpi.stdoutText().strip().replace('\n', ';'));
            assertTrue(acpi.stdoutText(), acpi.stdoutText().contains("LNRO0005"));
        }
    }
}
