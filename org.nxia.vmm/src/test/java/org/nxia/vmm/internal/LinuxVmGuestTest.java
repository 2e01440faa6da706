package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VmInfo;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.internal.linux.BzImage;
import org.nxia.vmm.internal.linux.LinuxBoot;
import org.nxia.vmm.internal.linux.LinuxLayout;
import org.nxia.vmm.internal.linux.TestKernel;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.internal.memhv.ScriptedVcpu;

/** A Linux VM as its kernel meets it on the in-memory hypervisor: entry registers, the CMOS clock's ports, and what the VM reports. */
class LinuxVmGuestTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final TestVms vms = new TestVms();
    @TempDir
    Path dir;

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    private LinuxProfile profile() throws Exception {
        return LinuxProfile.of(Files.write(dir.resolve("bzImage"), TestKernel.image()), null).withMemory(LinuxProfile.MIN_MEMORY)
                .withTimeout(Duration.ofSeconds(77));
    }

    private long lastRead(Script.Exit... exits) throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(), exits));
        VmCore vm = new VmCore("vm-linux", new LinuxVm(profile(), hv.info()), hv, threads, vms.factories(), VmCore.DESTROY_WAIT);
        vm.start();
        assertEquals(VmResult.Reason.HALTED, vm.await(WAIT).reason());
        long read = hv.partition().vcpus().getFirst().lastRead();
        vm.destroy();
        return read;
    }

    /** How a Linux VM running {@code exits} then halting ends. */
    private VmResult ending(LinuxProfile profile, Script.Exit... exits) throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(), exits));
        VmCore vm = new VmCore("vm-linux", new LinuxVm(profile, hv.info()), hv, threads, vms.factories(), VmCore.DESTROY_WAIT);
        vm.start();
        VmResult r = vm.await(WAIT);
        vm.destroy();
        return r;
    }

    /** ACPI's sleep control register: S5 with SLP_EN powers the VM off; another type, or no SLP_EN, does nothing. */
    @Test
    void s5WrittenToTheSleepControlRegisterPowersTheVmOff() throws Exception {
        int control = org.nxia.vmm.internal.acpi.AcpiTables.SLEEP_CONTROL_PORT;
        int status = org.nxia.vmm.internal.acpi.AcpiTables.SLEEP_STATUS_PORT;
        // what Linux's acpi_hw_extended_sleep writes: the wake status cleared, then SLP_TYP 5 << 2 | SLP_EN
        VmResult off = ending(profile(), new Script.PortWrite(status, 1, 0x80), new Script.PortWrite(control, 1, 5 << 2 | 0x20));
        assertEquals(VmResult.Reason.POWERED_OFF, off.reason());
        assertEquals("the guest powered off (ACPI S5)", off.detail());
        assertEquals(VmResult.Reason.HALTED, ending(profile(), new Script.PortWrite(control, 1, 3 << 2 | 0x20)).reason(),
                "S3 is not offered: nothing happens");
        assertEquals(VmResult.Reason.HALTED, ending(profile(), new Script.PortWrite(control, 1, 5 << 2)).reason(), "no SLP_EN");
        assertEquals(VmResult.Reason.HALTED, ending(profile(), new Script.PortWrite(status, 1, 5 << 2 | 0x20)).reason(),
                "the status register powers nothing off");
        assertEquals(0, lastRead(new Script.PortRead(status, 1)), "never woken");
        VmResult noAcpi = ending(profile().withAcpi(false), new Script.PortWrite(control, 1, 5 << 2 | 0x20));
        assertEquals(VmResult.Reason.HALTED, noAcpi.reason(), "without ACPI nothing serves the port (a Linux VM ignores it): "
                + noAcpi.detail());
    }

    @Test
    void theCmosClockReadsAsAValidStoppedClock() throws Exception {
        int index = LinuxVm.CMOS;
        int data = LinuxVm.CMOS + 1;
        assertEquals(0x80, lastRead(new Script.PortWrite(index, 1, 0x8d), new Script.PortRead(data, 1)),
                "register D (the NMI bit masked off): valid RAM and time");
        assertEquals(0x0d, lastRead(new Script.PortWrite(index, 1, 0x8d), new Script.PortRead(index, 1)), "the index reads back");
        assertEquals(0, lastRead(new Script.PortWrite(index, 1, 0x00), new Script.PortRead(data, 1)), "seconds: 0");
        assertEquals(0x80, lastRead(new Script.PortWrite(index, 1, 0x0d), new Script.PortWrite(data, 1, 0x00),
                new Script.PortRead(data, 1)), "a data write does not move the index");
    }

    @Test
    void theBootVcpuEntersTheKernelWithItsBootState() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
        LinuxProfile profile = profile();
        VmCore vm = new VmCore("vm-linux", new LinuxVm(profile, hv.info()), hv, threads, vms.factories(), VmCore.DESTROY_WAIT);
        ScriptedVcpu boot = hv.partition().vcpus().getFirst();
        LinuxLayout layout = LinuxLayout.plan(LinuxProfile.MIN_MEMORY, BzImage.parse(TestKernel.image(), "k"), 0);
        assertEquals(LinuxBoot.registers(layout), boot.registers());
        assertEquals(LinuxBoot.specialRegisters(boot.specialRegisters().apicBase()), boot.specialRegisters());
        vm.destroy();
    }

    @Test
    void aLinuxVmReportsItsKernelNoOutputAndHardwareExecution() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
        LinuxProfile profile = profile();
        LinuxVm kind = new LinuxVm(profile, hv.info());
        VmCore vm = new VmCore("vm-linux", kind, hv, threads, vms.factories(), VmCore.DESTROY_WAIT);
        VmInfo info = vm.info();
        assertEquals(profile.kernel().toString(), info.image());
        assertEquals("hardware", info.executionMode());
        assertEquals(Duration.ofSeconds(77), vm.timeout());
        assertEquals("the kernel rebooted or powered off (reboot); the VM stopped", kind.resetDetail("reboot"));
        assertEquals("a Linux VM needs uart and i8042 (org.nxia.device.platform)", kind.missingDeviceHint());
        vm.start();
        VmResult r = vm.await(WAIT);
        assertEquals(0, r.output().length, "a Linux VM returns no output bytes");
        vm.destroy();
    }
}
