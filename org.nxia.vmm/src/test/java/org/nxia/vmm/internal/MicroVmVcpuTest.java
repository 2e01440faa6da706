package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.ExitHandler;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.Hypervisor;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.spi.Partition;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.SpecialRegisters;
import org.nxia.vmm.spi.Vcpu;
import org.nxia.vmm.spi.VcpuStop;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.image.ElfImage;
import org.nxia.vmm.internal.micro.EntryState;

/** The micro-VM's vCPU thread over a hypervisor whose vCPU only does what the test says: no KVM. */
class MicroVmVcpuTest {

    private final ExecutorService threads = Executors.newCachedThreadPool();

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    /** A hypervisor over heap memory whose vCPU's run is {@code run}. */
    private static Hypervisor hypervisor(Supplier<VcpuStop> run) {
        return new Hypervisor() {
            @Override
            public HypervisorInfo info() {
                return new HypervisorInfo("fake", HypervisorInfo.Flavour.values()[0], true, "test", 0);
            }

            @Override
            public Partition createPartition(long ramBytes) {
                GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[(int) ramBytes]));
                return new Partition() {
                    @Override
                    public GuestMemory memory() {
                        return memory;
                    }

                    @Override
                    public Vcpu createVcpu(int id) {
                        return new FakeVcpu(run);
                    }

                    @Override
                    public Map<String, Long> statistics() {
                        return Map.of();
                    }

                    @Override
                    public void close() {
                    }
                };
            }
        };
    }

    private static final class FakeVcpu implements Vcpu {
        private final Supplier<VcpuStop> run;
        private Registers registers = Registers.RESET;
        private SpecialRegisters special = EntryState.specialRegisters(0, 0xfee0_0000L);

        FakeVcpu(Supplier<VcpuStop> run) {
            this.run = run;
        }

        @Override public int id() { return 0; }
        @Override public Registers registers() { return registers; }
        @Override public void setRegisters(Registers r) { registers = r; }
        @Override public SpecialRegisters specialRegisters() { return special; }
        @Override public void setSpecialRegisters(SpecialRegisters r) { special = r; }
        @Override public long readMsr(int index) { return 0; }
        @Override public void writeMsr(int index, long value) { }
        @Override public VcpuStop run(ExitHandler handler) { return run.get(); }
        @Override public void requestStop() { }
        @Override public Map<String, Long> statistics() { return Map.of(); }
        @Override public void close() { }
    }

    private VmCore vm(Supplier<VcpuStop> run) {
        VmProfile profile = VmProfile.of(Path.of("fake.elf"));
        ElfImage image = ElfImage.parse(ElfBuilder.minimal().build(), "fake.elf");
        return new VmCore("vm-t", new MicroVm(profile, image, new HostCalls()), hypervisor(run), threads, Map.of());
    }

    private static VcpuStop overflow() {
        throw new StackOverflowError("from a host function");
    }

    @Test
    void aVcpuThreadDyingOnAnErrorStillStopsTheVm() throws Exception {
        for (Supplier<VcpuStop> dies : List.<Supplier<VcpuStop>>of(MicroVmVcpuTest::overflow,
                () -> { throw new OutOfMemoryError("Java heap space"); })) {
            VmCore vm = vm(dies);
            vm.start();
            VmResult r = vm.await(Duration.ofSeconds(10));   // hung before: the VM stayed RUNNING
            assertEquals(VmState.STOPPED, vm.state());
            assertEquals(VmResult.Reason.HYPERVISOR_ERROR, r.reason());
            assertTrue(r.detail().contains("Error"), r.detail());
            vm.destroy();
        }
    }

    @Test
    void aVcpuThatHaltsEndsAsBefore() throws Exception {
        VmCore vm = vm(() -> new VcpuStop(VcpuStop.Kind.HALT, "hlt"));
        vm.start();
        assertEquals(VmResult.Reason.HALTED, vm.await(Duration.ofSeconds(10)).reason());
        vm.destroy();
    }
}
