package org.nxia.vmm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.Vcpu;
import org.nxia.vmm.spi.VcpuStop;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmSpec;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.PortDevice;
import org.nxia.vmm.internal.image.ElfImage;
import org.nxia.vmm.internal.micro.BootBlock;
import org.nxia.vmm.internal.micro.EntryState;
import org.nxia.vmm.internal.micro.ImageLoader;
import org.nxia.vmm.internal.micro.MicroVmLayout;
import org.nxia.vmm.internal.micro.MicroVmPorts;
import org.nxia.vmm.internal.micro.PageTables;

/**
 * A micro-VM: an OS-less guest image on one vCPU (docs/guest-abi.md), told
 * about its devices and Portals in the boot block, without interrupts. An
 * access nobody serves breaks the ABI and stops the VM.
 */
final class MicroVm implements VmKind {

    private static final Windows WINDOWS = new Windows(MicroVmLayout.MMIO_WINDOW, MicroVmLayout.MMIO_WINDOW_SIZE,
            MicroVmLayout.PORTAL_WINDOW, MicroVmLayout.PORTAL_WINDOW_SIZE, MicroVmLayout.PORTAL_ALIGN, BootBlock.MAX_PORTALS);

    private final VmProfile profile;
    private final ElfImage image;
    private final HostCalls hostCalls;
    private final MicroVmLayout layout;
    private final List<Long> mmioWindows = new ArrayList<>();
    private final byte[] consoleBuffer = new byte[MicroVmLayout.CONSOLE_CAP];
    private HypervisorInfo hypervisor;
    private long cr3;
    private long hostCallCount;
    private long benchExits;

    MicroVm(VmProfile profile, ElfImage image, HostCalls hostCalls) {
        this.profile = profile;
        this.image = image;
        this.hostCalls = hostCalls;
        this.layout = MicroVmLayout.plan(profile.memoryBytes(), image.end(), profile.input().length, profile.outputCapacity());
    }

    @Override
    public VmSpec spec() {
        return profile;
    }

    @Override
    public String imageName() {
        return profile.image().toString();
    }

    @Override
    public List<DeviceConfig> devices() {
        return profile.devices();
    }

    @Override
    public String missingDeviceHint() {
        return "device:list shows the types and their bundles";
    }

    @Override
    public Windows windows() {
        return WINDOWS;
    }

    @Override
    public boolean interrupts() {
        return false;
    }

    @Override
    public boolean strictBus() {
        return true;
    }

    @Override
    public Duration timeout() {
        return profile.timeout();
    }

    @Override
    public void load(VmCore vm) {
        hypervisor = vm.hypervisor();
        GuestMemory memory = vm.memory();
        ImageLoader.load(image, memory, layout, profile.image().toString());
        memory.write(layout.inputGpa(), profile.input());
        cr3 = PageTables.build(memory, layout.pageTablesBase(), layout.ramSize());
        EntryState.writeGdt(memory);
        BootBlock.write(memory, layout, hypervisor.nativeModeMsr(), profile.arg());
        ConsoleLog console = vm.consoleLog();
        vm.bus().addPorts(MicroVmPorts.DEBUG_PUTC, 1, writeOnly((port, size, value) -> {
            consoleBuffer[0] = (byte) value;
            console.append(consoleBuffer, 0, 1);
        }));
        vm.bus().addPorts(MicroVmPorts.EXIT, 4, writeOnly((port, size, value) -> vm.exitWith(value)));
        vm.bus().addPorts(MicroVmPorts.CONSOLE_FLUSH, 4, writeOnly((port, size, value) -> flushConsole(vm, value)));
        vm.bus().addPorts(MicroVmPorts.HOSTCALL, 4, writeOnly((port, size, value) -> hostCall(vm, Integer.toUnsignedLong(value))));
        vm.bus().addPorts(MicroVmPorts.BENCH, 4, writeOnly((port, size, value) -> benchExits++));
    }

    private interface PortWrite {
        void write(int port, int size, int value);
    }

    /** A port the guest writes; reading it returns all ones, as from an empty bus. */
    private static PortDevice writeOnly(PortWrite write) {
        return new PortDevice() {
            @Override
            public void write(int port, int size, int value) {
                write.write(port, size, value);
            }

            @Override
            public int read(int port, int size) {
                return -1;
            }
        };
    }

    private void flushConsole(VmCore vm, int length) {
        if (length < 0 || length > MicroVmLayout.CONSOLE_CAP) {
            vm.stopWith(VmResult.Reason.GUEST_ERROR, "console flush of " + Integer.toUnsignedString(length)
                    + " bytes exceeds the " + MicroVmLayout.CONSOLE_CAP + "-byte console buffer");
            return;
        }
        MemorySegment.copy(vm.memory().slice(MicroVmLayout.CONSOLE, length), ValueLayout.JAVA_BYTE, 0, consoleBuffer, 0, length);
        vm.consoleLog().append(consoleBuffer, 0, length);
    }

    private void hostCall(VmCore vm, long block) {
        hostCallCount++;
        if (hostCalls.handle(vm, block) == HostCalls.EINVAL && !vm.memory().contains(block, HostCalls.BLOCK_SIZE)) {
            vm.stopWith(VmResult.Reason.GUEST_ERROR, "host call block at 0x%x is not in guest RAM".formatted(block));
        }
    }

    @Override
    public void announce(List<Long> windows, long firstWindowSize, InterruptLine line) {
        mmioWindows.addAll(windows);
    }

    @Override
    public void boot(GuestMemory memory, Vcpu boot) {
        BootBlock.writeMmioTable(memory, mmioWindows);
        boot.setSpecialRegisters(EntryState.specialRegisters(cr3, boot.specialRegisters().apicBase()));
        boot.setRegisters(EntryState.registers(image.entry(), layout));
    }

    @Override
    public void portalMapped(GuestMemory memory, int slot, String name, long gpa, long size, long doorbellGpa, boolean readOnly) {
        BootBlock.writePortal(memory, slot, name, gpa, size, doorbellGpa,
                BootBlock.PORTAL_MAPPED | (readOnly ? 0 : BootBlock.PORTAL_WRITABLE));
    }

    @Override
    public void portalUnmapped(GuestMemory memory, int slot) {
        BootBlock.clearPortal(memory, slot);
    }

    @Override
    public String resetDetail(String how) {
        return "the guest asked for a reset (" + how + "); a micro-VM stops instead of rebooting";
    }

    @Override
    public String stopDetail(int vcpu, VcpuStop stop) {
        return switch (stop.kind()) {
            case HALT -> "the guest halted (hlt) without writing an exit status";
            case SHUTDOWN -> stop.detail();
            default -> stop.detail() + (hypervisor.flavour() == HypervisorInfo.Flavour.PVM
                    ? " (on PVM a guest must keep to lower-half addresses and 64-bit mode; see docs/guest-abi.md)" : "");
        };
    }

    @Override
    public byte[] output(GuestMemory memory) {
        return memory.read(layout.outputGpa(), (int) BootBlock.outputLength(memory, layout));
    }

    @Override
    public void counters(Map<String, Long> counters) {
        counters.put("host_calls", hostCallCount);
        counters.put("bench_exits", benchExits);
    }

    /**
     * How the guest's instructions ran. On PVM a native guest only has its
     * port I/O and MMIO emulated, so {@code insn_emulation} stays near the
     * count of those exits to the VMM; an emulated guest has every
     * instruction counted there.
     */
    @Override
    public String executionMode(VmState state, Map<String, Long> statistics) {
        return executionMode(hypervisor.flavour(), state, statistics);
    }

    static String executionMode(HypervisorInfo.Flavour flavour, VmState state, Map<String, Long> stats) {
        return switch (flavour) {
            case HARDWARE_VMX, HARDWARE_SVM -> "hardware";
            case PVM, UNKNOWN -> {
                Long emulated = stats.get("insn_emulation");
                Long io = stats.containsKey("io_exits") && stats.containsKey("mmio_exits")
                        ? stats.get("io_exits") + stats.get("mmio_exits") : null;
                if (emulated == null || io == null) {
                    yield state == VmState.CREATED ? "not started" : "unknown (no insn_emulation counter)";
                }
                yield emulated <= 2 * io + 64
                        ? "native (PVM, insn_emulation=" + emulated + " for " + io + " I/O and MMIO exits)"
                        : "emulated (insn_emulation=" + emulated + " for " + io + " I/O and MMIO exits)";
            }
        };
    }
}
