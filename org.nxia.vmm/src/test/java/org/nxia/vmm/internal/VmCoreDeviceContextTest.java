package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.DeviceFactory;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.image.ElfImage;
import org.nxia.vmm.internal.linux.TestKernel;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.internal.micro.MicroVmLayout;
import org.nxia.vmm.internal.micro.MicroVmPorts;

/**
 * What {@link VmCore} gives a device: its context's windows, lines, console
 * and stop calls, each with its bounds, and the MMIO accesses that reach the
 * device at offsets into its window.
 */
class VmCoreDeviceContextTest {

    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final long WINDOW = MicroVmLayout.MMIO_WINDOW;

    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final AtomicInteger closed = new AtomicInteger();
    private final List<String> accesses = new ArrayList<>();
    private DeviceContext context;
    private Consumer<DeviceContext> wiring = c -> { };
    @TempDir
    Path dir;

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    /** "probe" hands its context to the test after {@link #wiring}; "broken" throws; a Linux VM's uart and i8042 stand-ins. */
    private final Map<String, DeviceFactory> factories = new java.util.HashMap<>(new TestVms().factories());

    {
        factories.put("probe", factory("probe", c -> {
            context = c;
            wiring.accept(c);
        }));
        factories.put("broken", factory("broken", c -> {
            throw new IllegalStateException("the device cannot start");
        }));
    }

    private DeviceFactory factory(String type, Consumer<DeviceContext> create) {
        return new DeviceFactory() {
            @Override
            public String type() {
                return type;
            }

            @Override
            public String description() {
                return type;
            }

            @Override
            public Device create(DeviceConfig config, DeviceContext c) {
                create.accept(c);
                return new Device() {
                    @Override
                    public String type() {
                        return type;
                    }

                    @Override
                    public Record state() {
                        return config;
                    }

                    @Override
                    public void close() {
                        closed.incrementAndGet();
                    }
                };
            }
        };
    }

    private final MmioDevice recorder = new MmioDevice() {
        @Override
        public void write(long offset, int size, long value) {
            accesses.add("write 0x%x %d 0x%x".formatted(offset, size, value));
        }

        @Override
        public long read(long offset, int size) {
            return 0x100 + offset;
        }
    };

    private VmCore micro(InMemoryHypervisor hv, String... devices) {
        VmProfile profile = VmProfile.of(Path.of("test.elf"))
                .withDevices(java.util.Arrays.stream(devices).map(d -> new DeviceConfig(d, Map.of())).toList());
        return new VmCore("vm-ctx", new MicroVm(profile, ElfImage.parse(ElfBuilder.minimal().build(), "test.elf"), new HostCalls()),
                hv, threads, factories, VmCore.DESTROY_WAIT);
    }

    private VmCore linux(InMemoryHypervisor hv) throws Exception {
        Path kernel = Files.write(dir.resolve("bzImage"), TestKernel.image());
        LinuxProfile profile = LinuxProfile.of(kernel, null).withMemory(LinuxProfile.MIN_MEMORY)
                .withDevices(List.of(new DeviceConfig("probe", Map.of())));
        return new VmCore("vm-ctx", new LinuxVm(profile, hv.info()), hv, threads, factories, VmCore.DESTROY_WAIT);
    }

    private static InMemoryHypervisor halting(Script.Exit... exits) {
        return new InMemoryHypervisor(id -> Script.of(new Script.Halt(), exits));
    }

    @Test
    void aDeviceSeesItsVmAndItsMemory() {
        InMemoryHypervisor hv = halting();
        VmCore vm = micro(hv, "probe");
        assertEquals("vm-ctx", context.vmId());
        assertSame(vm.memory(), context.memory(), "the VM's view, which notes the VMM's accesses for a reset in place");
        context.memory().writeInt(0x1000, 0x5a5a);
        assertEquals(0x5a5a, hv.partition().memory().readInt(0x1000), "it is the partition's RAM");
        assertSame(vm, vm.vm(), "a host call's VM is this one");
        assertEquals(1, vm.devices().size());
        assertEquals("probe", vm.devices().getFirst().type());
        assertEquals("test.elf", ((VmProfile) vm.spec()).image().toString());
        vm.destroy();
        assertEquals(1, closed.get(), "destroy closes the device");
    }

    @Test
    void mmioWindowsArePageRoundedAndPackedFromTheWindowsStart() {
        VmCore vm = micro(halting(), "probe");
        assertEquals(WINDOW, context.claimMmio(1, recorder));
        assertEquals(WINDOW + 0x1000, context.claimMmio(0x1001, recorder), "one byte took a page");
        assertEquals(WINDOW + 0x3000, context.claimMmio(0x1000, recorder), "0x1001 bytes took two");
        long left = MicroVmLayout.MMIO_WINDOW_SIZE - 0x4000;
        assertEquals(WINDOW + 0x4000, context.claimMmio(left, recorder), "the rest fits exactly");
        IllegalArgumentException full = assertThrows(IllegalArgumentException.class, () -> context.claimMmio(1, recorder));
        assertEquals("the VM's device area (2 MiB at 0xd0000000) has no room for 1 bytes", full.getMessage());
        vm.destroy();
    }

    @Test
    void anMmioWindowOfNothingOrMoreThanTheAreaIsRefusedAndTheWholeAreaIsNot() {
        VmCore vm = micro(halting(), "probe");
        for (long size : new long[] {0, -1, MicroVmLayout.MMIO_WINDOW_SIZE + 1, Long.MAX_VALUE}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> context.claimMmio(size, recorder));
            assertEquals("an MMIO window of " + size + " bytes is not possible", e.getMessage());
        }
        assertEquals(WINDOW, context.claimMmio(MicroVmLayout.MMIO_WINDOW_SIZE, recorder));
        vm.destroy();
    }

    @Test
    void mmioAccessesReachTheDeviceAtOffsetsIntoItsWindow() throws Exception {
        wiring = c -> {
            c.claimMmio(0x1000, recorder);
            c.claimMmio(0x1000, recorder);
        };
        InMemoryHypervisor hv = halting(new Script.MmioWrite(WINDOW + 0x1010, 4, 0xabc), new Script.MmioRead(WINDOW + 0x24, 2));
        VmCore vm = micro(hv, "probe");
        vm.start();
        assertEquals(VmResult.Reason.HALTED, vm.await(WAIT).reason());
        assertEquals(List.of("write 0x10 4 0xabc"), accesses, "the second window's offset 0x10");
        assertEquals(0x124, hv.partition().vcpus().getFirst().lastRead());
        vm.destroy();
    }

    @Test
    void interruptLinesAreCheckedAndHandedOutOnce() throws Exception {
        InMemoryHypervisor hv = halting();
        VmCore vm = linux(hv);
        for (int gsi : new int[] {-1, 24, 1000}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> context.claimIrq(gsi));
            assertEquals("IRQ " + gsi + " does not exist: 0 to 23", e.getMessage());
        }
        assertEquals(23, context.claimIrq(23).orElseThrow().gsi());
        assertEquals(0, context.claimIrq(0).orElseThrow().gsi());
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class, () -> context.claimIrq(23));
        assertEquals("IRQ 23 is already claimed by another device", twice.getMessage());
        assertEquals(5, context.claimIrq().orElseThrow().gsi(), "the first free line");
        context.claimIrq(6);
        assertEquals(7, context.claimIrq().orElseThrow().gsi(), "6 is taken");
        vm.destroy();
    }

    @Test
    void aMicroVmHasNoInterruptLines() {
        VmCore vm = micro(halting(), "probe");
        assertTrue(context.claimIrq(5).isEmpty());
        assertTrue(context.claimIrq().isEmpty());
        vm.destroy();
    }

    @Test
    void aDeviceWritesToTheConsoleFromItsOffset() throws Exception {
        VmCore vm = micro(halting(), "probe");
        context.console("xhiy".getBytes(StandardCharsets.US_ASCII), 1, 2);
        assertEquals("hi", vm.console());
        vm.destroy();
    }

    @Test
    void theConsoleSinkGetsWhatTheGuestPrints() throws Exception {
        VmCore vm = micro(halting(new Script.PortWrite(MicroVmPorts.DEBUG_PUTC, 1, '!')), "probe");
        StringBuilder sink = new StringBuilder();
        vm.consoleSink(sink);
        vm.start();
        vm.await(WAIT);
        assertEquals("!", sink.toString());
        vm.destroy();
    }

    @Test
    void aDeviceCanEndTheVmWithAStatusAResetOrAFailure() throws Exception {
        record Case(Consumer<DeviceContext> call, VmResult.Reason reason, int status, String detail) {
        }
        for (Case c : List.of(
                new Case(ctx -> ctx.exit(3), VmResult.Reason.EXITED, 3, "the guest exited with status 3"),
                new Case(ctx -> ctx.reset("keyboard"), VmResult.Reason.RESET, -1,
                        "the guest asked for a reset (keyboard); a micro-VM stops instead of rebooting"),
                new Case(ctx -> ctx.fail("a bad ring"), VmResult.Reason.GUEST_ERROR, -1, "a bad ring"))) {
            VmCore vm = micro(new InMemoryHypervisor(id -> Script.untilStopped()), "probe");
            vm.start();
            c.call().accept(context);
            VmResult r = vm.await(WAIT);
            assertEquals(c.reason(), r.reason());
            assertEquals(c.status(), r.exitStatus());
            assertEquals(c.detail(), r.detail());
            vm.destroy();
        }
    }

    /** Ports a device claims are its own: the guest's out and in reach it, not the micro-VM's strict refusal. */
    @Test
    void portsADeviceClaimsReachIt() throws Exception {
        List<String> seen = new java.util.ArrayList<>();
        wiring = c -> c.claimPorts(0x300, 4, new org.nxia.vmm.api.device.PortDevice() {
            @Override
            public void write(int port, int size, int value) {
                seen.add("out " + Integer.toHexString(port) + " " + value);
            }

            @Override
            public int read(int port, int size) {
                seen.add("in " + Integer.toHexString(port));
                return 0x5a;
            }
        });
        InMemoryHypervisor hv = halting(new Script.PortWrite(0x301, 1, 7), new Script.PortRead(0x303, 1));
        VmCore vm = micro(hv, "probe");
        vm.start();
        assertEquals(VmResult.Reason.HALTED, vm.await(WAIT).reason());
        assertEquals(List.of("out 301 7", "in 303"), seen);
        assertEquals(0x5a, hv.partition().vcpus().getFirst().lastRead());
        vm.destroy();
    }

    @Test
    void aDoorbellOutsideTheDevicesWindowsIsRefused() {
        wiring = c -> c.claimMmio(0x1000, recorder);
        VmCore vm = micro(halting(), "probe");
        assertThrows(IllegalArgumentException.class, () -> context.createDoorbell(WINDOW + 0x1000, 4));
        assertTrue(context.createDoorbell(WINDOW + 0x50, 4).isEmpty(), "inside, on a backend without doorbells");
        vm.destroy();
    }

    @Test
    void aDeviceThatFailsToStartClosesTheOnesBeforeItAndThePartition() {
        InMemoryHypervisor hv = halting();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> micro(hv, "probe", "broken"));
        assertEquals("the device cannot start", e.getMessage());
        assertEquals(1, closed.get(), "the probe created before it is closed");
        assertTrue(hv.partition().closed(), "and so is the partition");
    }

    @Test
    void destroyingACreatedVmGivesItAResult() {
        VmCore vm = micro(halting(), "probe");
        vm.destroy();
        VmResult r = vm.result().orElseThrow();
        assertEquals(VmResult.Reason.STOPPED, r.reason());
        assertEquals("stopped before it started", r.detail());
        assertEquals(VmState.STOPPED, vm.state());
    }

    @Test
    void infoSumsTheVcpusStatisticsWhileTheVmIsOpen() throws Exception {
        VmCore vm = micro(halting(), "probe");
        vm.start();
        vm.await(WAIT);
        assertEquals(1L, vm.info().counters().get("runs"), "the in-memory vCPU counts its runs");
        assertTrue(vm.info().counters().get("ram_bytes") > 0, "the partition's own figures come along");
        vm.destroy();
        assertFalse(vm.info().counters().containsKey("runs"), "a destroyed VM's vCPUs are not asked");
        assertFalse(vm.info().counters().containsKey("ram_bytes"), "nor its partition");
    }
}
