package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nxia.vmm.spi.HypervisorInfo;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.internal.image.ElfBuilder;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.internal.memhv.ScriptedVcpu;
import org.nxia.vmm.internal.micro.MicroVmPorts;

/**
 * The VM lifecycle of {@link VmCore}, for both kinds, on an in-memory
 * hypervisor whose vCPUs play scripts: the races KVM tests cannot aim at.
 */
class VmCoreLifecycleTest {

    private static final Duration WAIT = Duration.ofSeconds(10);

    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final TestVms vms = new TestVms();
    @TempDir
    Path dir;

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    private VmCore vm(String kind, InMemoryHypervisor hv, int vcpus) throws Exception {
        return kind.equals("micro") ? vms.micro(hv, threads, VmCore.DESTROY_WAIT, new DeviceConfig("mmio", Map.of()))
                : vms.linux(hv, threads, dir, vcpus, VmCore.DESTROY_WAIT, new DeviceConfig("mmio", Map.of()));
    }

    private static List<ScriptedVcpu> enteredVcpus(InMemoryHypervisor hv) throws InterruptedException {
        List<ScriptedVcpu> vcpus = hv.partition().vcpus();
        for (ScriptedVcpu v : vcpus) {
            assertTrue(v.awaitEntered(WAIT.toMillis()), "vCPU " + v.id() + " entered the guest");
        }
        return vcpus;
    }

    @Test
    void aStopWhileTheVcpuThreadsStartWinsAndTheGuestIsNeverEntered() throws Exception {
        // A backend that forgets a stop asked for before run(): only the core's check keeps the stop.
        InMemoryHypervisor hv = new InMemoryHypervisor(HypervisorInfo.Flavour.HARDWARE_VMX, false, id -> Script.untilStopped());
        ExecutorService one = Executors.newSingleThreadExecutor();
        try {
            CountDownLatch release = new CountDownLatch(1);
            one.submit(() -> release.await(WAIT.toMillis(), TimeUnit.MILLISECONDS));   // the vCPU thread is slow to start
            VmCore vm = vms.micro(hv, one, VmCore.DESTROY_WAIT);
            vm.start();
            vm.stop();
            release.countDown();
            VmResult r = vm.await(WAIT);
            assertEquals(VmResult.Reason.STOPPED, r.reason());
            assertEquals("stopped from the host", r.detail());
            assertEquals(0, hv.partition().vcpus().getFirst().runs(), "the guest was never entered");
            vm.destroy();
        } finally {
            one.shutdownNow();
        }
    }

    @Test
    void aVmStoppedBeforeItStartsCannotStartAndNeverRuns() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT);
        vm.stop();
        assertEquals(VmState.STOPPED, vm.state());
        assertEquals("stopped before it started", vm.await(Duration.ZERO).detail());
        assertThrows(IllegalStateException.class, vm::start);
        assertEquals(0, hv.partition().vcpus().getFirst().runs());
        vm.destroy();
        assertTrue(hv.partition().closed());
    }

    @ParameterizedTest
    @ValueSource(strings = {"micro", "linux"})
    void destroyWhileRunningStopsEveryVcpuThenRunsDestroyActionsWhileMemoryIsThere(String kind) throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = vm(kind, hv, 2);
        vm.start();
        List<ScriptedVcpu> vcpus = enteredVcpus(hv);
        AtomicInteger ran = new AtomicInteger();
        List<String> seen = new ArrayList<>();
        vm.onDestroy(() -> {
            ran.incrementAndGet();
            seen.add("left=" + vcpus.stream().allMatch(ScriptedVcpu::hasLeft));
            seen.add("ram=" + vm.memory().read(0, 4).length);   // throws once the partition's memory is freed
            seen.add("closed=" + hv.partition().closed());
        });
        int devicesBefore = vms.closedDevices.get();
        vm.destroy();
        assertEquals(1, ran.get(), "the destroy action ran once");
        assertEquals(List.of("left=true", "ram=4", "closed=false"), seen);
        assertTrue(hv.partition().closed());
        assertEquals(VmState.STOPPED, vm.state());
        assertEquals(VmResult.Reason.STOPPED, vm.result().orElseThrow().reason());
        assertEquals("destroyed", vm.result().orElseThrow().detail());
        assertEquals(kind.equals("micro") ? 1 : 3, vms.closedDevices.get() - devicesBefore, "every device closed");
        AtomicInteger late = new AtomicInteger();
        vm.onDestroy(late::incrementAndGet);
        assertEquals(1, late.get(), "an action after destroy runs at once");
        vm.destroy();
        assertEquals(1, ran.get(), "a second destroy does nothing");
    }

    @Test
    void destroyCancelsAVcpuThatDoesNotLeaveTheGuest() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.IgnoringStop()));
        VmCore vm = vms.micro(hv, threads, Duration.ofMillis(200));
        vm.start();
        ScriptedVcpu vcpu = enteredVcpus(hv).getFirst();
        long t0 = System.nanoTime();
        vm.destroy();
        assertTrue(System.nanoTime() - t0 < WAIT.toNanos(), "destroy returned");
        assertEquals(VmResult.Reason.STOPPED, vm.await(WAIT).reason());
        assertTrue(vcpu.wasInterrupted(), "the stuck vCPU's thread was interrupted");
        assertTrue(hv.partition().closed());
    }

    @Test
    void theFirstStopReasonWinsAndLaterOnesChangeNothing() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT);
        vm.start();
        enteredVcpus(hv);
        vm.stopWith(VmResult.Reason.GUEST_ERROR, "first");
        vm.exitWith(3);
        vm.stopWith(VmResult.Reason.TIMEOUT, "second");
        vm.stop();
        VmResult r = vm.await(WAIT);
        assertEquals(VmResult.Reason.GUEST_ERROR, r.reason());
        assertEquals("first", r.detail());
        assertEquals(-1, r.exitStatus(), "a later exit does not set the status");
        vm.destroy();
    }

    @Test
    void aGuestExitBeforeAHostStopKeepsItsStatus() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.UntilStopped(),
                new Script.PortWrite(MicroVmPorts.EXIT, 4, 7)));
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT);
        vm.start();
        VmResult r = vm.await(WAIT);
        vm.stop();
        vm.stopWith(VmResult.Reason.TIMEOUT, "late");
        assertEquals(VmResult.Reason.EXITED, r.reason());
        assertEquals(7, r.exitStatus());
        assertEquals(r, vm.result().orElseThrow(), "the result does not change after the VM stopped");
        vm.destroy();
    }

    @Test
    void concurrentStopReasonsLeaveOneConsistentCause() throws Exception {
        VmResult.Reason[] reasons = {VmResult.Reason.GUEST_ERROR, VmResult.Reason.TIMEOUT, VmResult.Reason.STOPPED,
                VmResult.Reason.RESET};
        int racers = 8;
        for (int round = 0; round < 40; round++) {
            InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
            VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT);
            vm.start();
            enteredVcpus(hv);
            CyclicBarrier barrier = new CyclicBarrier(racers);
            List<Thread> ts = new ArrayList<>();
            for (int i = 0; i < racers; i++) {
                int n = i;
                ts.add(Thread.ofPlatform().start(() -> {
                    try {
                        barrier.await(WAIT.toMillis(), TimeUnit.MILLISECONDS);
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                    if (n % 2 == 0) {
                        vm.exitWith(n);
                    } else {
                        vm.stopWith(reasons[n % reasons.length], "cause " + n);
                    }
                }));
            }
            for (Thread t : ts) {
                t.join(WAIT.toMillis());
            }
            VmResult r = vm.await(WAIT);
            if (r.reason() == VmResult.Reason.EXITED) {
                assertEquals("the guest exited with status " + r.exitStatus(), r.detail(), "status and detail agree");
                assertEquals(0, r.exitStatus() % 2);
            } else {
                int n = Integer.parseInt(r.detail().substring("cause ".length()));
                assertEquals(reasons[n % reasons.length], r.reason(), "reason and detail come from one cause");
                assertEquals(-1, r.exitStatus());
            }
            vm.destroy();
        }
    }

    @Test
    void aTripleFaultOnOneVcpuStopsEveryVcpuAndEndsTheVmOnceAllLeft() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> id == 2
                ? Script.of(new Script.Shutdown("triple fault")) : Script.untilStopped());
        VmCore vm = vms.linux(hv, threads, dir, 4, VmCore.DESTROY_WAIT);
        vm.start();
        VmResult r = vm.await(WAIT);
        assertEquals(VmResult.Reason.TRIPLE_FAULT, r.reason());
        assertEquals("vCPU 2: triple fault", r.detail());
        // a vCPU whose thread started after the fault never entered: the core saw the stop first
        assertTrue(hv.partition().vcpus().stream().noneMatch(ScriptedVcpu::inGuest), "every vCPU left before the result");
        vm.destroy();
    }

    @ParameterizedTest
    @ValueSource(strings = {"micro", "linux"})
    void anErrorOnAVcpuThreadStopsTheWholeVm(String kind) throws Exception {
        IntFunction<Script> scripts = id -> id == 1 || kind.equals("micro")
                ? Script.of(new Script.Throw(new StackOverflowError("from a host function"))) : Script.untilStopped();
        InMemoryHypervisor hv = new InMemoryHypervisor(scripts);
        VmCore vm = vm(kind, hv, 3);
        vm.start();
        VmResult r = vm.await(WAIT);   // a Linux VM whose vCPU 1 died stayed RUNNING before VmCore
        assertEquals(VmState.STOPPED, vm.state());
        assertEquals(VmResult.Reason.HYPERVISOR_ERROR, r.reason());
        assertTrue(r.detail().contains("StackOverflowError"), r.detail());
        vm.destroy();
    }

    @Test
    void awaitTimesOutWhileTheGuestRunsThenATimeoutStopsIt() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT);
        vm.start();
        assertThrows(TimeoutException.class, () -> vm.await(Duration.ofMillis(50)));
        assertEquals(VmState.RUNNING, vm.state());
        assertTrue(vm.result().isEmpty());
        vm.stopWith(VmResult.Reason.TIMEOUT, "timed out");
        assertEquals(VmResult.Reason.TIMEOUT, vm.await(WAIT).reason());
        vm.destroy();
    }

    @Test
    void theManagerStopsAGuestPastItsTimeoutAndDestroysIt() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmManagerImpl manager = new VmManagerImpl(hv);
        try {
            Path image = Files.write(dir.resolve("guest.elf"), ElfBuilder.minimal().build());
            VmResult r = manager.run(VmProfile.of(image).withTimeout(Duration.ofMillis(100)), null);
            assertEquals(VmResult.Reason.TIMEOUT, r.reason());
            assertTrue(r.detail().contains("100 ms timeout"), r.detail());
            assertTrue(manager.list().isEmpty());
            assertTrue(hv.partition().closed());
        } finally {
            manager.deactivate();
        }
    }
}
