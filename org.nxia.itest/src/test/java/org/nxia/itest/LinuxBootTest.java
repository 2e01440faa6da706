package org.nxia.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import javax.inject.Inject;

import org.junit.Test;
import org.junit.runner.RunWith;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.DeviceConfig;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/**
 * Boots a stock Linux kernel (bzImage + initramfs) on two vCPUs through the
 * platform and waits for the System VM agent's ready line on the 16550
 * console. In the rig everything is emulated: minutes, not seconds.
 */
@RunWith(HardwareVirtualizationRequirement.class)
@HardwareVirtualizationRequirement.NeedsKernel
@ExamReactorStrategy(PerClass.class)
public class LinuxBootTest {

    static final String READY = "nxia-agent: ready";
    static final int VCPUS = Integer.getInteger("nxia.linux.vcpus", 2);
    static final Duration BOOT_LIMIT = Duration.ofMinutes(Long.getLong("nxia.linux.bootMinutes", 6));
    static final Duration QUIET_REPORT = Duration.ofSeconds(20);

    @Inject
    VmManager vms;

    @Configuration
    public Option[] config() {
        return NxiaOptions.platform();
    }

    @Test
    public void bootsOnTwoVcpusToTheAgentReadyLine() throws Exception {
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withVcpus(VCPUS).withMemory(256L << 20).withTimeout(BOOT_LIMIT)
                .withDevices(List.of(DeviceConfig.parse("virtio-rng")))
                // without ACPI: this test reads the devices' announcement on the command line
                .withAcpi(false);
        VirtualMachine vm = vms.create(profile);
        long start = System.nanoTime();
        Thread watchdog = stackDumpWhenStuck();
        try {
            vm.start();
            long deadline = start + BOOT_LIMIT.toNanos();
            int shown = 0;
            long quietSince = System.nanoTime();
            while (!vm.console().contains(READY)) {
                lastIteration = System.nanoTime();
                // the console as it comes: in the rig a boot takes minutes and may be cut short
                String text = vm.console();
                if (text.length() > shown) {
                    System.out.print(text.substring(shown));
                    shown = text.length();
                    quietSince = System.nanoTime();
                } else if (System.nanoTime() - quietSince > QUIET_REPORT.toNanos()) {
                    // a quiet console: say whether the vCPUs still run (exits grow) or sleep
                    System.out.println("LinuxBootTest: console quiet for " + QUIET_REPORT.toSeconds() + " s; info "
                            + vm.info().counters());
                    quietSince = System.nanoTime();
                }
                if (vm.result().isPresent() || System.nanoTime() > deadline) {
                    vm.stop();
                    VmResult r = vm.await(Duration.ofSeconds(10));
                    fail("no '" + READY + "' line: the VM ended " + r.reason() + " (" + r.detail() + ") after "
                            + r.runTime().toSeconds() + " s; devices: " + vm.devices().stream().map(d -> d.state().toString()).toList()
                            + "; console:\n" + vm.console());
                }
                Thread.sleep(200);
            }
            long readyMs = (System.nanoTime() - start) / 1_000_000;
            String console = vm.console();
            System.out.println(console.substring(Math.min(shown, console.length())));
            System.out.println("LinuxBootTest: ready line after " + readyMs + " ms; info " + vm.info().counters());
            assertTrue("every vCPU came up:\n" + console, console.contains("Brought up 1 node, " + VCPUS + " CPU"));
            assertTrue("the guest found KVM:\n" + console, console.contains("Hypervisor detected: KVM"));
            assertTrue("the virtio-rng device was announced on the command line:\n" + console,
                    console.contains("virtio_mmio.device=4K@0xd0000000:5"));
            vm.stop();  // the agent serves until told otherwise; stopping must be clean
            VmResult r = vm.await(Duration.ofSeconds(30));
            System.out.println("LinuxBootTest: " + r.reason() + " " + r.detail() + " after " + r.runTime().toMillis() + " ms");
            assertEquals("stopped from the host, nothing else (" + r.detail() + ")", VmResult.Reason.STOPPED, r.reason());
            assertEquals(VmState.STOPPED, vm.state());
        } finally {
            watchdog.interrupt();
            vms.destroy(vm.id());
        }
    }

    /**
     * The same kernel with ACPI in a partition that looks like Hyper-V: Linux takes the hypervisor for
     * Microsoft's (Hyper-V's CPUID leaves, none of KVM's), sets up its hypercall page, reads its
     * features, keeps time by Hyper-V's clock, and boots to the agent as on KVM.
     */
    @Test
    public void bootsAsAHyperVGuest() throws Exception {
        LinuxProfile profile = LinuxProfile.of(Path.of(System.getProperty(HardwareVirtualizationRequirement.KERNEL_PROPERTY)),
                        Path.of(System.getProperty(HardwareVirtualizationRequirement.INITRD_PROPERTY)))
                .withVcpus(VCPUS).withMemory(256L << 20).withTimeout(BOOT_LIMIT).withHyperv(true);
        VirtualMachine vm = vms.create(profile);
        try {
            vm.start();
            long start = System.nanoTime();
            long deadline = start + BOOT_LIMIT.toNanos();
            while (!vm.console().contains(READY)) {
                if (vm.result().isPresent() || System.nanoTime() > deadline) {
                    System.out.println("LinuxBootTest: Hyper-V guest info " + vm.info().counters());
                    vm.stop();
                    VmResult r = vm.await(Duration.ofSeconds(10));
                    fail("no '" + READY + "' line as a Hyper-V guest: the VM ended " + r.reason() + " (" + r.detail() + "); console:\n"
                            + vm.console());
                }
                Thread.sleep(200);
            }
            String console = vm.console();
            System.out.println("LinuxBootTest: as a Hyper-V guest, ready line after " + (System.nanoTime() - start) / 1_000_000 + " ms; info "
                    + vm.info().counters() + "\n" + console.lines()
                    .filter(l -> l.contains("Hyper-V") || l.contains("hyperv") || l.contains("Hypervisor")).reduce("", (a, b) -> a + b + "\n"));
            assertTrue("the guest found Hyper-V:\n" + console, console.contains("Hypervisor detected: Microsoft Hyper-V"));
            assertTrue("it read Hyper-V's features:\n" + console, console.contains("Hyper-V: privilege flags low"));
            assertTrue("its clock is Hyper-V's (the reference TSC page, else the reference counter MSR):\n" + console,
                    console.contains("Switched to clocksource hyperv_clocksource"));
            assertTrue("no trace of KVM's leaves:\n" + console, !console.contains("Hypervisor detected: KVM"));
            assertTrue("every vCPU came up:\n" + console, console.contains("Brought up 1 node, " + VCPUS + " CPU"));
            // the DSDT names a VMBus; hv_vmbus connects to the VMM's server at the newest version it speaks, and
            // hv_utils opens the shutdown and heartbeat channels it offers
            assertTrue("VMBus connected:\n" + console, console.contains("hv_vmbus: Vmbus version:5.3"));
            Device vmbus = vm.devices().stream().filter(d -> d.type().equals("vmbus")).findFirst().orElseThrow();
            long channelsBy = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!vmbus.state().toString().matches(".*1 open, shutdown: framework 3\\.0.*2 open, heartbeat: framework 3\\.0, heartbeat 3\\.0, [1-9]\\d* beats.*")
                    && System.nanoTime() < channelsBy && vm.result().isEmpty()) {
                Thread.sleep(200);
            }
            System.out.println("LinuxBootTest: VMBus server " + vmbus.state() + "\n" + vm.console().lines()
                    .filter(l -> l.contains("hv_") || l.contains("vmbus")).reduce("", (a, b) -> a + b + "\n"));
            assertTrue("both channels open, heartbeats answered: " + vmbus.state() + "\n" + vm.console(), vmbus.state().toString()
                    .matches(".*version=5\\.3, messageVp=0, .*dropped=0, refusedBusy=0, .*1 open, shutdown: framework 3\\.0.*2 open, heartbeat: .*[1-9]\\d* beats, 0 failures.*"));
            // asked through the shutdown channel, the guest powers itself off
            assertTrue("the guest can be asked to power off", vm.requestShutdown());
            VmResult off = vm.await(Duration.ofSeconds(120));
            assertEquals(off.detail() + "\n" + vm.console(), VmResult.Reason.POWERED_OFF, off.reason());
            assertTrue("hv_utils took the request:\n" + vm.console(), vm.console().contains("Shutdown request received"));
            assertTrue("the shutdown was answered: " + vmbus.state(), vmbus.state().toString().contains("1 requested, 1 accepted"));
        } finally {
            vms.destroy(vm.id());
        }
    }

    private volatile long lastIteration = System.nanoTime();

    /** Prints every thread's stack when the loop above stops turning for 30 s: a hang shows where it hangs. */
    private Thread stackDumpWhenStuck() {
        Thread t = new Thread(() -> {
            try {
                while (true) {
                    Thread.sleep(5_000);
                    if (System.nanoTime() - lastIteration > 30_000_000_000L) {
                        StringBuilder b = new StringBuilder("LinuxBootTest: the wait loop is stuck; threads:\n");
                        Thread.getAllStackTraces().forEach((th, st) -> {
                            b.append("  ").append(th.getName()).append(' ').append(th.getState()).append('\n');
                            for (StackTraceElement e : st) {
                                b.append("      at ").append(e).append('\n');
                            }
                        });
                        System.out.println(b);
                        lastIteration = System.nanoTime() + 60_000_000_000L;
                    }
                }
            } catch (InterruptedException e) {
                // the test ended
            }
        }, "linux-boot-watchdog");
        t.setDaemon(true);
        t.start();
        return t;
    }
}
