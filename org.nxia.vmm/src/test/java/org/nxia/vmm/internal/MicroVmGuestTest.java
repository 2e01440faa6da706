package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.api.VmInfo;
import org.nxia.vmm.spi.VcpuStop;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.image.ElfImage;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.internal.memhv.ScriptedVcpu;
import org.nxia.vmm.internal.micro.BootBlock;
import org.nxia.vmm.internal.micro.EntryState;
import org.nxia.vmm.internal.micro.MicroVmLayout;
import org.nxia.vmm.internal.micro.MicroVmPorts;
import org.nxia.vmm.internal.micro.PageTables;

/**
 * A micro-VM's guest ABI driven through {@link VmCore} on the in-memory
 * hypervisor: what the guest finds in memory and registers when it starts,
 * and what each of its ports does with what it writes, bad values included.
 */
class MicroVmGuestTest {

    private static final Duration WAIT = Duration.ofSeconds(30);

    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final TestVms vms = new TestVms();

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    private VmCore micro(InMemoryHypervisor hv, VmProfile profile, ElfImage image) {
        return new VmCore("vm-micro", new MicroVm(profile, image, new HostCalls()), hv, threads, vms.factories(), VmCore.DESTROY_WAIT);
    }

    private VmCore micro(InMemoryHypervisor hv) {
        return vms.micro(hv, threads, VmCore.DESTROY_WAIT);
    }

    private static VmResult run(VmCore vm) throws Exception {
        vm.start();
        return vm.await(WAIT);
    }

    @Test
    void theGuestStartsAtItsEntryWithItsImageInputBootBlockGdtAndPageTablesInPlace() throws Exception {
        byte[] code = {(byte) 0x90, (byte) 0x90, (byte) 0xf4, 0x11, 0x22};
        ElfBuilder elf = ElfBuilder.minimal();
        elf.segment(0).data = code;
        elf.segment(0).memsz = 4096;
        elf.entry(0x100002);
        ElfImage image = ElfImage.parse(elf.build(), "entry.elf");
        byte[] input = "the input".getBytes(StandardCharsets.US_ASCII);
        VmProfile profile = VmProfile.of(Path.of("entry.elf")).withInput(input).withArg(0x5eed)
                .withDevices(List.of(new DeviceConfig("mmio", Map.of()), new DeviceConfig("mmio", Map.of())));
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
        VmCore vm = micro(hv, profile, image);
        GuestMemory m = hv.partition().memory();
        MicroVmLayout layout = MicroVmLayout.plan(profile.memoryBytes(), image.end(), input.length, profile.outputCapacity());

        assertArrayEquals(code, m.read(0x100000, code.length), "the image's bytes at its address");
        assertArrayEquals(input, m.read(layout.inputGpa(), input.length), "the input where the boot block says");
        long b = MicroVmLayout.BOOT_BLOCK;
        assertEquals(BootBlock.MAGIC, m.readInt(b));
        assertEquals(layout.inputGpa(), m.readLong(b + 48));
        assertEquals(input.length, m.readLong(b + 56));
        assertEquals(0x5eed, m.readLong(b + 112), "the profile's argument");
        assertEquals(2, m.readInt(b + BootBlock.MMIO_COUNT), "both devices' windows are listed");
        assertEquals(MicroVmLayout.MMIO_WINDOW, m.readLong(b + BootBlock.MMIO_BASES));
        assertEquals(MicroVmLayout.MMIO_WINDOW + 4096, m.readLong(b + BootBlock.MMIO_BASES + 8));
        assertEquals(0x00af_9b00_0000_ffffL, m.readLong(MicroVmLayout.GDT + EntryState.CODE_SELECTOR), "the GDT's 64-bit code descriptor");

        ScriptedVcpu vcpu = hv.partition().vcpus().getFirst();
        assertEquals(0x100002, vcpu.registers().rip(), "the ELF entry");
        assertEquals(EntryState.registers(0x100002, layout), vcpu.registers());
        long cr3 = vcpu.specialRegisters().cr3();
        assertEquals(layout.pageTablesBase(), cr3);
        assertEquals(0x100000, PageTables.translate(m, cr3, 0x100000), "the tables map the image");
        assertEquals(-1, PageTables.translate(m, cr3, 0), "and leave the null page out");
        vm.destroy();
    }

    @Test
    void debugPutcAppendsOneByteToTheConsole() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(),
                new Script.PortWrite(MicroVmPorts.DEBUG_PUTC, 1, 'o'), new Script.PortWrite(MicroVmPorts.DEBUG_PUTC, 1, 'k')));
        VmCore vm = micro(hv);
        VmResult r = run(vm);
        assertEquals("ok", vm.console());
        assertEquals(VmResult.Reason.HALTED, r.reason());
        assertEquals("the guest halted (hlt) without writing an exit status", r.detail());
        vm.destroy();
    }

    @Test
    void theGuestsPortsReadAsAnEmptyBus() throws Exception {
        for (int port : new int[] {MicroVmPorts.DEBUG_PUTC, MicroVmPorts.EXIT, MicroVmPorts.CONSOLE_FLUSH, MicroVmPorts.HOSTCALL,
                MicroVmPorts.BENCH}) {
            InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(), new Script.PortRead(port, 4)));
            VmCore vm = micro(hv);
            assertEquals(VmResult.Reason.HALTED, run(vm).reason(), "a read of a guest port is no error");
            assertEquals(-1, hv.partition().vcpus().getFirst().lastRead(), "port 0x" + Integer.toHexString(port));
            vm.destroy();
        }
    }

    @Test
    void anExitStatusEndsTheVmWithIt() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(), new Script.PortWrite(MicroVmPorts.EXIT, 4, 42)));
        VmCore vm = micro(hv);
        VmResult r = run(vm);
        assertEquals(VmResult.Reason.EXITED, r.reason());
        assertEquals(42, r.exitStatus());
        vm.destroy();
    }

    @Test
    void aConsoleFlushCopiesTheBufferUpToItsCapacityAndNoFurther() throws Exception {
        for (int length : new int[] {0, 5, MicroVmLayout.CONSOLE_CAP}) {
            InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(),
                    new Script.PortWrite(MicroVmPorts.CONSOLE_FLUSH, 4, length)));
            VmCore vm = micro(hv);
            byte[] text = new byte[length];
            for (int i = 0; i < length; i++) {
                text[i] = (byte) ('a' + i % 26);
            }
            hv.partition().memory().write(MicroVmLayout.CONSOLE, text);
            VmResult r = run(vm);
            assertEquals(VmResult.Reason.HALTED, r.reason(), "a flush of " + length + ": " + r.detail());
            assertEquals(new String(text, StandardCharsets.ISO_8859_1), vm.console(), "a flush of " + length);
            vm.destroy();
        }
    }

    @Test
    void aConsoleFlushPastTheBufferOrNegativeStopsTheVm() throws Exception {
        for (int length : new int[] {MicroVmLayout.CONSOLE_CAP + 1, -1, Integer.MIN_VALUE}) {
            InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(),
                    new Script.PortWrite(MicroVmPorts.CONSOLE_FLUSH, 4, length)));
            VmCore vm = micro(hv);
            VmResult r = run(vm);
            assertEquals(VmResult.Reason.GUEST_ERROR, r.reason(), "a flush of " + length);
            assertEquals("console flush of " + Integer.toUnsignedString(length) + " bytes exceeds the 32768-byte console buffer",
                    r.detail());
            assertEquals("", vm.console());
            vm.destroy();
        }
    }

    @Test
    void aHostCallBlockOutsideRamStopsTheVmAndOneInsideIsAnsweredAndCounted() throws Exception {
        long ram = VmProfile.DEFAULT_MEMORY;
        for (long block : new long[] {ram, ram - HostCalls.BLOCK_SIZE + 1, 0xffff_ffffL}) {
            InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(),
                    new Script.PortWrite(MicroVmPorts.HOSTCALL, 4, (int) block)));
            VmCore vm = micro(hv);
            VmResult r = run(vm);
            assertEquals(VmResult.Reason.GUEST_ERROR, r.reason(), "block 0x" + Long.toHexString(block));
            assertEquals("host call block at 0x%x is not in guest RAM".formatted(block), r.detail());
            assertEquals(1L, vm.info().counters().get("host_calls"));
            vm.destroy();
        }
        // the last block that fits (a bad magic) and a misaligned one in RAM: answered EINVAL, and the VM goes on
        long inside = ram - HostCalls.BLOCK_SIZE;
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(),
                new Script.PortWrite(MicroVmPorts.HOSTCALL, 4, (int) inside), new Script.PortWrite(MicroVmPorts.HOSTCALL, 4, 0x20001)));
        VmCore vm = micro(hv);
        VmResult r = run(vm);
        assertEquals(VmResult.Reason.HALTED, r.reason(), r.detail());
        assertEquals(2L, vm.info().counters().get("host_calls"));
        vm.destroy();
    }

    @Test
    void theOutputIsWhatTheGuestSaysItWroteClampedToItsCapacity() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
        VmProfile profile = VmProfile.of(Path.of("test.elf"));
        ElfImage image = ElfImage.parse(ElfBuilder.minimal().build(), "test.elf");
        VmCore vm = micro(hv, profile, image);
        MicroVmLayout layout = MicroVmLayout.plan(profile.memoryBytes(), image.end(), 0, profile.outputCapacity());
        GuestMemory m = hv.partition().memory();
        m.write(layout.outputGpa(), "result".getBytes(StandardCharsets.US_ASCII));
        m.writeLong(MicroVmLayout.BOOT_BLOCK + BootBlock.OUTPUT_LEN, 6);
        VmResult r = run(vm);
        assertArrayEquals("result".getBytes(StandardCharsets.US_ASCII), r.output());
        vm.destroy();
    }

    @Test
    void infoNamesTheImageAndTheExecutionMode() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Halt(), new Script.PortWrite(MicroVmPorts.BENCH, 4, 0)));
        VmCore vm = micro(hv);
        VmInfo created = vm.info();
        assertEquals("test.elf", created.image());
        assertEquals("hardware", created.executionMode());
        run(vm);
        assertEquals(1L, vm.info().counters().get("bench_exits"));
        vm.destroy();
    }

    @Test
    void aVcpuThatThrowsStopsTheVmAsAHypervisorError() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.Throw(new IllegalStateException("boom"))));
        VmCore vm = micro(hv);
        VmResult r = run(vm);
        assertEquals(VmResult.Reason.HYPERVISOR_ERROR, r.reason());
        assertEquals("vCPU 0: boom", r.detail());
        vm.destroy();

        hv = new InMemoryHypervisor(id -> Script.of(new Script.Throw(new StackOverflowError("deep"))));
        vm = micro(hv);
        r = run(vm);
        assertEquals(VmResult.Reason.HYPERVISOR_ERROR, r.reason());
        assertEquals("the vCPU thread died: java.lang.StackOverflowError: deep", r.detail());
        vm.destroy();
    }

    @Test
    void stopDetailsSayWhatStoppedTheGuestAndWhatPvmNeeds() {
        for (HypervisorInfo.Flavour flavour : HypervisorInfo.Flavour.values()) {
            InMemoryHypervisor hv = new InMemoryHypervisor(flavour, true, id -> Script.of(new Script.Halt()));
            VmProfile profile = VmProfile.of(Path.of("test.elf"));
            MicroVm kind = new MicroVm(profile, ElfImage.parse(ElfBuilder.minimal().build(), "test.elf"), new HostCalls());
            VmCore vm = new VmCore("vm-micro", kind, hv, threads, vms.factories(), VmCore.DESTROY_WAIT);
            assertEquals("the guest halted (hlt) without writing an exit status", kind.stopDetail(0, new VcpuStop(VcpuStop.Kind.HALT, "hlt")));
            assertEquals("triple fault at rip 0x1234", kind.stopDetail(0, new VcpuStop(VcpuStop.Kind.SHUTDOWN, "triple fault at rip 0x1234")));
            String internal = kind.stopDetail(0, new VcpuStop(VcpuStop.Kind.INTERNAL_ERROR, "emulation failed"));
            assertEquals(flavour == HypervisorInfo.Flavour.PVM
                    ? "emulation failed (on PVM a guest must keep to lower-half addresses and 64-bit mode; see docs/guest-abi.md)"
                    : "emulation failed", internal, flavour.toString());
            assertEquals("the guest asked for a reset (triple); a micro-VM stops instead of rebooting", kind.resetDetail("triple"));
            assertEquals("device:list shows the types and their bundles", kind.missingDeviceHint());
            vm.destroy();
        }
    }
}
