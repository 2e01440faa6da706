package org.nxia.vmm.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.HypervisorException;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.spi.Vcpu;
import org.nxia.vmm.spi.VcpuStop;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmSpec;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.PortDevice;
import org.nxia.vmm.internal.acpi.AcpiTables;
import org.nxia.vmm.internal.acpi.VirtioMmioDevice;
import org.nxia.vmm.internal.linux.BzImage;
import org.nxia.vmm.internal.linux.LinuxBoot;
import org.nxia.vmm.internal.linux.LinuxLayout;

/**
 * A Linux VM: a stock kernel on N vCPUs with the hypervisor's interrupt
 * controllers, a 16550 console on COM1 (IRQ 4), the i8042 whose reset stops
 * the VM, and the profile's devices, virtio-mmio ones announced on the
 * command line, or in the DSDT when the profile asks for ACPI tables.
 * Ports and MMIO nobody serves read as all ones and ignore writes, as on a
 * PC: a kernel probes for hardware that is not there.
 */
final class LinuxVm implements VmKind {

    /** What every Linux VM's command line starts with: console on COM1, reboot through the i8042, no PCI. */
    static final String BASE_CMDLINE = "console=ttyS0 reboot=k panic=-1 pci=off 8250.nr_uarts=1 "
            + "i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd";
    /**
     * With ACPI the i8042 driver takes its ports and IRQ from the DSDT's
     * PNP0303: in hardware-reduced mode the kernel maps no ISA IRQ, so the
     * fixed IRQ 1 that i8042.nopnp uses would not be there.
     */
    static final String ACPI_CMDLINE = BASE_CMDLINE.replace(" i8042.nopnp", "");
    static final int CMOS = 0x70;
    /** The VMBus server's device type, which a Hyper-V Linux VM with ACPI gets (org.nxia.device.vmbus). */
    static final String VMBUS = "vmbus";
    private static final Windows WINDOWS = new Windows(LinuxLayout.MMIO_BASE, LinuxLayout.MMIO_SIZE, LinuxLayout.PORTAL_WINDOW,
            LinuxLayout.PORTAL_WINDOW_SIZE, LinuxLayout.PORTAL_ALIGN, (int) (LinuxLayout.PORTAL_WINDOW_SIZE / LinuxLayout.PORTAL_ALIGN));

    private final LinuxProfile profile;
    private final byte[] kernelFile;
    private final byte[] initrd;
    private final BzImage kernel;
    private final LinuxLayout layout;
    private final StringBuilder announced = new StringBuilder();
    private final List<VirtioMmioDevice> virtioMmio = new ArrayList<>();
    /** A device serves the SynIC: the DSDT names a VMBus. */
    private boolean vmbus;
    private int cmosIndex;

    /** Reads and checks the kernel and initramfs; refuses a host without hardware virtualization. */
    LinuxVm(LinuxProfile profile, HypervisorInfo hypervisor) {
        if (!hypervisor.flavour().hardwareVirtualization()) {
            throw new HypervisorException("linux boot", 0, "this host's backend is " + hypervisor.flavour().label()
                    + ": a stock Linux kernel needs hardware virtualization (VMX or SVM); run the System VM on such a host");
        }
        this.profile = profile;
        this.kernelFile = readFile(profile.kernel(), "kernel");
        this.initrd = profile.initrd() == null ? new byte[0] : readFile(profile.initrd(), "initramfs");
        this.kernel = BzImage.parse(kernelFile, profile.kernel().toString());
        this.layout = LinuxLayout.plan(profile.memoryBytes(), kernel, initrd.length);
    }

    private static byte[] readFile(Path path, String what) {
        try {
            return Files.readAllBytes(path);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the " + what + " " + path + ": " + e.getMessage(), e);
        }
    }

    @Override
    public VmSpec spec() {
        return profile;
    }

    @Override
    public String imageName() {
        return profile.kernel().toString();
    }

    @Override
    public List<DeviceConfig> devices() {
        List<DeviceConfig> all = new ArrayList<>();
        all.add(new DeviceConfig("uart", Map.of()));
        all.add(new DeviceConfig("i8042", Map.of()));
        if (profile.hyperv() && profile.acpi() && profile.devices().stream().noneMatch(d -> d.type().equals(VMBUS))) {
            // Linux finds a VMBus in the DSDT only: without ACPI a Hyper-V guest has none
            all.add(new DeviceConfig(VMBUS, Map.of()));
        }
        all.addAll(profile.devices());
        return all;
    }

    @Override
    public String missingDeviceHint() {
        return "a Linux VM needs uart and i8042 (org.nxia.device.platform)" + (profile.hyperv() ? ", and a Hyper-V one vmbus (org.nxia.device.vmbus)" : "");
    }

    @Override
    public void announceVmbus() {
        vmbus = true;
    }

    @Override
    public Windows windows() {
        return WINDOWS;
    }

    @Override
    public boolean interrupts() {
        return true;
    }

    @Override
    public boolean strictBus() {
        return false;
    }

    @Override
    public Duration timeout() {
        return profile.timeout();
    }

    /**
     * The CMOS/RTC index and data ports, reading zero: a valid, stopped clock at 2000-01-01. With
     * ACPI, the FADT's sleep control and status registers: S5 written with SLP_EN powers the VM off.
     */
    @Override
    public boolean hyperV() {
        return profile.hyperv();
    }

    @Override
    public void load(VmCore vm) {
        if (profile.acpi()) {
            vm.bus().addPorts(AcpiTables.SLEEP_CONTROL_PORT, 2, new PortDevice() {
                @Override
                public void write(int port, int size, int value) {
                    if (port == AcpiTables.SLEEP_CONTROL_PORT && (value & AcpiTables.SLEEP_ENABLE) != 0
                            && (value >> AcpiTables.SLEEP_TYPE_SHIFT & AcpiTables.SLEEP_TYPE_MASK) == AcpiTables.S5_SLEEP_TYPE) {
                        vm.stopWith(VmResult.Reason.POWERED_OFF, "the guest powered off (ACPI S5)");
                    }
                }

                @Override
                public int read(int port, int size) {
                    return 0;   // the status register's WAK_STS: never woken
                }
            });
        }
        vm.bus().addPorts(CMOS, 2, new PortDevice() {
            @Override
            public void write(int port, int size, int value) {
                if (port == CMOS) {
                    cmosIndex = value & 0x7f;
                }
            }

            @Override
            public int read(int port, int size) {
                return port == CMOS ? cmosIndex : cmosIndex == 0x0d ? 0x80 : 0;   // register D: valid RAM and time
            }
        });
    }

    /**
     * A device with a window and a line is virtio-mmio: the kernel learns of
     * it from the command line, or from the DSDT with ACPI (not both: the
     * second registration of the same window would fail).
     */
    @Override
    public void announce(List<Long> windows, long firstWindowSize, InterruptLine line) {
        if (windows.isEmpty() || line == null) {
            return;
        }
        if (profile.acpi()) {
            virtioMmio.add(new VirtioMmioDevice(windows.getFirst(), firstWindowSize, line.gsi()));
        } else {
            announced.append(" virtio_mmio.device=%dK@0x%x:%d".formatted(firstWindowSize >> 10, windows.getFirst(), line.gsi()));
        }
    }

    @Override
    public void boot(GuestMemory memory, Vcpu boot) {
        String cmdline = ((profile.acpi() ? ACPI_CMDLINE : BASE_CMDLINE) + announced + " " + profile.cmdline()).strip();
        // Processor entries carry family/model/stepping; any plausible value will do for Linux.
        LinuxBoot.load(memory, kernel, kernelFile, layout, initrd, cmdline, profile.vcpus(), 0x600, 0x0781_abfd,
                profile.acpi() ? Optional.of(LinuxBoot.acpiTables(profile.vcpus(), virtioMmio, vmbus)) : Optional.empty());
        boot.setSpecialRegisters(LinuxBoot.specialRegisters(boot.specialRegisters().apicBase()));
        boot.setRegisters(LinuxBoot.registers(layout));
    }

    /**
     * A virtio-pmem device tells the guest where its region is; the command line
     * tells it the region's name ({@code nxia.portal=NAME@0xGPA}), which the agent
     * links as /run/nxia/portal/NAME. Regions mapped after boot are not named.
     */
    @Override
    public void portalMapped(GuestMemory memory, int slot, String name, long gpa, long size, long doorbellGpa, boolean readOnly) {
        announced.append(" nxia.portal=%s@0x%x".formatted(name, gpa));
    }

    @Override
    public void portalUnmapped(GuestMemory memory, int slot) {
    }

    @Override
    public String resetDetail(String how) {
        return "the kernel rebooted or powered off (" + how + "); the VM stopped";
    }

    @Override
    public String stopDetail(int vcpu, VcpuStop stop) {
        return stop.kind() == VcpuStop.Kind.HALT ? "vCPU " + vcpu + " halted" : "vCPU " + vcpu + ": " + stop.detail();
    }

    @Override
    public byte[] output(GuestMemory memory) {
        return new byte[0];
    }

    @Override
    public void counters(Map<String, Long> counters) {
    }

    @Override
    public String executionMode(VmState state, Map<String, Long> statistics) {
        return "hardware";
    }
}
