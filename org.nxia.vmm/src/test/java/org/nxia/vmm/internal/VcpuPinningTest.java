package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.vmm.spi.HostAffinity;
import org.nxia.vmm.spi.HostPlacement;
import org.nxia.vmm.spi.Hypervisor;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.spi.Partition;
import org.nxia.vmm.spi.PlacementOutcome;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.internal.linux.TestKernel;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;

/** Which host CPU each vCPU thread gets, what is refused up front, and what vm:info is told; a host of CPUs 0-3 stands in. */
class VcpuPinningTest {

    private static final Duration WAIT = Duration.ofSeconds(10);

    /** Per-thread affinity of a 4-CPU host; remembers what each thread was pinned to. */
    private static final class FakeHost implements HostAffinity {
        final ThreadLocal<List<Integer>> cpus = ThreadLocal.withInitial(() -> List.of(0, 1, 2, 3));
        final Map<String, List<Integer>> pinnedByThread = new ConcurrentHashMap<>();
        volatile boolean refuse;

        @Override
        public List<Integer> allowedCpus() {
            return List.of(0, 1, 2, 3);
        }

        @Override
        public List<Integer> threadCpus() {
            return cpus.get();
        }

        @Override
        public void pinThread(List<Integer> to) {
            if (refuse) {
                throw new IllegalStateException("sched_setaffinity failed: EINVAL");
            }
            cpus.set(to);
            if (to.size() == 1) {
                pinnedByThread.put(Thread.currentThread().getName(), to);
            }
        }
    }

    private final FakeHost host = new FakeHost();
    private final ExecutorService threads = Executors.newCachedThreadPool();
    @TempDir
    Path dir;

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    private static HostPlacement cpus(Integer... cpus) {
        return new HostPlacement(List.of(cpus), false, true);
    }

    @Test
    void cpusTheProcessMayNotRunOnAreRefusedUpFrontSayingWhichItMay() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> VcpuPinning.of(cpus(0, 7, 4), 2, Optional.of(host), "kvm"));
        assertEquals("host CPUs 7,4 are not ones this process may run on (it may run on 0-3); change the profile's cpus",
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> VcpuPinning.of(cpus(0), 1, Optional.empty(), "whp"));
        assertTrue(e.getMessage().startsWith("the whp backend cannot pin vCPU threads"), e.getMessage());
    }

    @Test
    void vcpusTakeTheCpusInTurnAndGiveTheThreadBackItsAffinity() {
        VcpuPinning pinning = VcpuPinning.of(cpus(2, 3), 3, Optional.of(host), "kvm");
        assertEquals(new PlacementOutcome("cpus", true, false, "2,3 requested: pinned when the vCPUs run"), pinning.outcome());
        for (int vcpu = 0; vcpu < 3; vcpu++) {
            List<Integer> before = pinning.pin(vcpu);
            assertEquals(List.of(vcpu % 2 == 0 ? 2 : 3), host.threadCpus());
            pinning.unpin(before);
            assertEquals(List.of(0, 1, 2, 3), host.threadCpus(), "a pooled thread is given back");
        }
        assertEquals(new PlacementOutcome("cpus", true, true, "2,3 pinned (vcpu0 on 2, vcpu1 on 3, vcpu2 on 2)"), pinning.outcome());
    }

    @Test
    void aVmWithSomeVcpusPinnedSaysNotAll() {
        VcpuPinning pinning = VcpuPinning.of(cpus(2, 3), 2, Optional.of(host), "kvm");
        pinning.pin(0);
        assertEquals(new PlacementOutcome("cpus", true, false, "2,3 requested, not all pinned (vcpu0 on 2, vcpu1 on -)"), pinning.outcome());
    }

    @Test
    void cpuListsShowRunsAsRanges() {
        assertEquals("0,1", VcpuPinning.list(List.of(0, 1)));
        assertEquals("0-2", VcpuPinning.list(List.of(0, 1, 2)), "three in a row make a range");
        assertEquals("0-3,6,8-4095", VcpuPinning.list(java.util.stream.Stream.concat(List.of(0, 1, 2, 3, 6).stream(),
                java.util.stream.IntStream.rangeClosed(8, 4095).boxed()).toList()));
        assertEquals("5,3,4", VcpuPinning.list(List.of(5, 3, 4)), "in the profile's order");
    }

    @Test
    void notPinnedLeavesThreadsAlone() {
        VcpuPinning pinning = VcpuPinning.of(HostPlacement.NONE, 2, Optional.of(host), "kvm");
        assertEquals(null, pinning.pin(0));
        assertEquals(List.of(0, 1, 2, 3), host.threadCpus());
        assertEquals(new PlacementOutcome("cpus", false, false, "any (not pinned)"), pinning.outcome());
    }

    @Test
    void aPinTheHostRefusesEndsTheVmNamingTheVcpuAndCpu() throws Exception {
        host.refuse = true;
        VmCore vm = linux(2, cpus(1, 0));
        vm.start();
        VmResult r = vm.await(WAIT);
        assertEquals(VmResult.Reason.HYPERVISOR_ERROR, r.reason());
        assertTrue(r.detail().contains("could not be pinned to host CPU"), r.detail());
        assertTrue(r.detail().contains("sched_setaffinity failed: EINVAL"), r.detail());
        vm.destroy();
    }

    @Test
    void eachVcpuThreadRunsPinnedAndVmInfoIsToldSo() throws Exception {
        VmCore vm = linux(2, cpus(1, 0));
        assertEquals(List.of(new PlacementOutcome("cpus", true, false, "1,0 requested: pinned when the vCPUs run")), vm.placement());
        vm.start();
        assertEquals(VmResult.Reason.HALTED, vm.await(WAIT).reason());
        assertEquals(List.of(new PlacementOutcome("cpus", true, true, "1,0 pinned (vcpu0 on 1, vcpu1 on 0)")), vm.placement());
        assertEquals(Map.of("nxia-vm-pin-vcpu0", List.of(1), "nxia-vm-pin-vcpu1", List.of(0)), host.pinnedByThread);
        vm.destroy();
    }

    @Test
    void aVmWithoutPlacementReportsNone() throws Exception {
        VmCore vm = linux(1, HostPlacement.NONE);
        assertEquals(List.of(), vm.placement());
        vm.destroy();
    }

    @Test
    void aBackendThatCannotPlaceRamRefusesHugePagesAndNoOvercommit() {
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                () -> linux(1, new HostPlacement(List.of(), true, true)));
        assertTrue(e.getMessage().contains("cannot place guest RAM"), e.getMessage());
        assertThrows(UnsupportedOperationException.class, () -> linux(1, new HostPlacement(List.of(), false, false)));
    }

    /** A Linux VM on the in-memory hypervisor, given {@link #host} as its host's affinity. */
    private VmCore linux(int vcpus, HostPlacement placement) throws Exception {
        InMemoryHypervisor memory = new InMemoryHypervisor(id -> Script.of(new Script.Halt()));
        Hypervisor hv = new Hypervisor() {
            @Override
            public HypervisorInfo info() {
                return memory.info();
            }

            @Override
            public Partition createPartition(long ramBytes) {
                return memory.createPartition(ramBytes);
            }

            @Override
            public Optional<HostAffinity> hostAffinity() {
                return Optional.of(host);
            }
        };
        Path kernel = Files.write(dir.resolve("bzImage"), TestKernel.image());
        LinuxProfile profile = LinuxProfile.of(kernel, null).withVcpus(vcpus).withMemory(LinuxProfile.MIN_MEMORY).withPlacement(placement);
        return new VmCore("vm-pin", new LinuxVm(profile, hv.info()), hv, threads, new TestVms().factories(), VmCore.DESTROY_WAIT);
    }
}
