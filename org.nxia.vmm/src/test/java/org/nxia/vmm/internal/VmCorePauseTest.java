package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;
import org.nxia.vmm.internal.memhv.ScriptedVcpu;

/** Pause and resume of {@link VmCore} on the in-memory hypervisor, and their races with start and stop. */
class VmCorePauseTest {

    private static final Duration WAIT = Duration.ofSeconds(10);

    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final TestVms vms = new TestVms();
    @TempDir
    Path dir;

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    private VmCore vm(String kind, InMemoryHypervisor hv) throws Exception {
        return kind.equals("micro") ? vms.micro(hv, threads, VmCore.DESTROY_WAIT, new DeviceConfig("mmio", Map.of()))
                : vms.linux(hv, threads, dir, 2, VmCore.DESTROY_WAIT, new DeviceConfig("mmio", Map.of()));
    }

    private static void eventually(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not within " + WAIT + ": " + what);
            }
            Thread.sleep(5);
        }
    }

    private static List<ScriptedVcpu> entered(InMemoryHypervisor hv) throws InterruptedException {
        List<ScriptedVcpu> vcpus = hv.partition().vcpus();
        for (ScriptedVcpu v : vcpus) {
            assertTrue(v.awaitEntered(WAIT.toMillis()), "vCPU " + v.id() + " entered the guest");
        }
        return vcpus;
    }

    @ParameterizedTest
    @ValueSource(strings = {"micro", "linux"})
    void pauseTakesEveryVcpuOutOfTheGuestAndResumeEntersAgainOnTheSameThreads(String kind) throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = vm(kind, hv);
        vm.start();
        List<ScriptedVcpu> vcpus = entered(hv);
        vm.pause();
        assertEquals(VmState.PAUSED, vm.state());
        assertEquals(VmState.PAUSED, vm.info().state());
        for (ScriptedVcpu v : vcpus) {
            assertFalse(v.inGuest(), "vCPU " + v.id() + " left the guest");
            assertEquals(1, v.runs());
        }
        Thread.sleep(50);
        assertTrue(vcpus.stream().noneMatch(ScriptedVcpu::inGuest), "nobody re-entered while paused");
        vm.resume();
        assertEquals(VmState.RUNNING, vm.state());
        eventually(() -> vcpus.stream().allMatch(v -> v.runs() == 2 && v.inGuest()), "every vCPU entered again");
        for (ScriptedVcpu v : vcpus) {
            assertEquals(1, v.threads().size(), "vCPU " + v.id() + " went on on its own thread");
        }
        vm.pause();   // a second pause waits for the vCPUs again (the count of parked ones went back to 0 on resume)
        for (ScriptedVcpu v : vcpus) {
            assertFalse(v.inGuest(), "vCPU " + v.id() + " left the guest on the second pause");
        }
        vm.resume();
        assertTrue(vm.result().isEmpty());
        vm.stop();
        assertEquals(VmResult.Reason.STOPPED, vm.await(WAIT).reason());
        vm.destroy();
    }

    @Test
    void aPauseWhileTheVcpuThreadStartsParksItBeforeItEntersTheGuest() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        ExecutorService one = Executors.newSingleThreadExecutor();
        try {
            CountDownLatch release = new CountDownLatch(1);
            one.submit(() -> release.await(WAIT.toMillis(), TimeUnit.MILLISECONDS));   // the vCPU thread is slow to start
            VmCore vm = vms.micro(hv, one, VmCore.DESTROY_WAIT);
            vm.start();
            CompletableFuture<Void> pausing = CompletableFuture.runAsync(vm::pause, threads);
            Thread.sleep(50);
            assertFalse(pausing.isDone(), "pause waits for the vCPU thread to park");
            release.countDown();
            pausing.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
            ScriptedVcpu vcpu = hv.partition().vcpus().getFirst();
            assertEquals(VmState.PAUSED, vm.state());
            assertEquals(0, vcpu.runs(), "the guest was not entered");
            vm.resume();
            assertTrue(vcpu.awaitEntered(WAIT.toMillis()));
            assertEquals(1, vcpu.runs());
            vm.destroy();
        } finally {
            one.shutdownNow();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"micro", "linux"})
    void aStopWhilePausedEndsTheVmWithoutEnteringTheGuestAgain(String kind) throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = vm(kind, hv);
        vm.start();
        List<ScriptedVcpu> vcpus = entered(hv);
        vm.pause();
        vm.stop();
        VmResult r = vm.await(WAIT);
        assertEquals(VmResult.Reason.STOPPED, r.reason());
        assertEquals("stopped from the host", r.detail());
        assertEquals(VmState.STOPPED, vm.state());
        assertTrue(vcpus.stream().allMatch(v -> v.runs() == 1), "no vCPU entered again");
        vm.destroy();
        assertTrue(hv.partition().closed());
    }

    @Test
    void destroyWhilePausedReleasesEverything() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = vm("linux", hv);
        vm.start();
        entered(hv);
        vm.pause();
        long started = System.nanoTime();
        vm.destroy();
        assertTrue(System.nanoTime() - started < VmCore.DESTROY_WAIT.toNanos(), "parked threads woke at once");
        assertEquals("destroyed", vm.result().orElseThrow().detail());
        assertTrue(hv.partition().closed());
    }

    @Test
    void resumeAfterStopIsRefusedSayingWhy() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT);
        vm.start();
        entered(hv);
        vm.pause();
        vm.stop();
        vm.await(WAIT);
        IllegalStateException e = assertThrows(IllegalStateException.class, vm::resume);
        assertEquals("vm-micro is stopped; only a paused VM can be resumed", e.getMessage());
        vm.destroy();
    }

    @Test
    void pauseIsRefusedUnlessRunningAndResumeUnlessPaused() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT);
        assertEquals("vm-micro is created; only a running VM can be paused",
                assertThrows(IllegalStateException.class, vm::pause).getMessage());
        vm.start();
        entered(hv);
        assertEquals("vm-micro is running; only a paused VM can be resumed",
                assertThrows(IllegalStateException.class, vm::resume).getMessage());
        vm.pause();
        assertEquals("vm-micro is paused; only a running VM can be paused",
                assertThrows(IllegalStateException.class, vm::pause).getMessage());
        vm.stop();
        vm.await(WAIT);
        assertEquals("vm-micro is stopped; only a running VM can be paused",
                assertThrows(IllegalStateException.class, vm::pause).getMessage());
        vm.destroy();
    }

    @Test
    void aVcpuThatDoesNotLeaveTheGuestAbandonsThePauseAndTheVmRunsOn() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.of(new Script.IgnoringStop()));
        VmCore vm = vms.micro(hv, threads, Duration.ofMillis(200));
        vm.start();
        entered(hv);
        IllegalStateException e = assertThrows(IllegalStateException.class, vm::pause);
        assertEquals("vm-micro could not pause within 200 ms (1 of 1 vCPUs did not leave the guest); it runs on", e.getMessage());
        assertEquals(VmState.RUNNING, vm.state());
        assertThrows(TimeoutException.class, () -> vm.await(Duration.ofMillis(50)));
        vm.destroy();   // cancels the deaf vCPU's thread
        assertEquals(VmResult.Reason.STOPPED, vm.await(WAIT).reason());
    }

    /** One deaf vCPU of two: the pause is abandoned, says which, and the vCPU that had parked enters the guest again. */
    @Test
    void aPauseAbandonedForOneDeafVcpuLetsTheParkedOneRunOn() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> id == 0 ? Script.of(new Script.IgnoringStop()) : Script.untilStopped());
        VmCore vm = vms.linux(hv, threads, dir, 2, Duration.ofMillis(200));
        vm.start();
        List<ScriptedVcpu> vcpus = entered(hv);
        IllegalStateException e = assertThrows(IllegalStateException.class, vm::pause);
        assertEquals("vm-linux could not pause within 200 ms (1 of 2 vCPUs did not leave the guest); it runs on", e.getMessage());
        ScriptedVcpu listening = vcpus.get(1);
        eventually(() -> listening.runs() == 2 && listening.inGuest(), "the vCPU that parked entered the guest again");
        assertEquals(VmState.RUNNING, vm.state());
        vm.destroy();
    }

    /** A kick nobody asked for (a backend's stray exit): re-entering would spin, so the VM ends saying why. */
    @Test
    void aVcpuThatLeavesTheGuestUnaskedEndsTheVm() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT);
        vm.start();
        entered(hv).getFirst().requestStop();
        VmResult r = vm.await(WAIT);
        assertEquals(VmResult.Reason.HYPERVISOR_ERROR, r.reason(), r.detail());
        assertTrue(r.detail().contains("left the guest though neither a stop nor a pause asked it to"), r.detail());
        vm.destroy();
    }

    @Test
    void manyPausesAndResumesNeverLoseAStop() throws Exception {
        InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());
        VmCore vm = vm("linux", hv);
        vm.start();
        entered(hv);
        for (int i = 0; i < 50; i++) {
            vm.pause();
            vm.resume();
        }
        CompletableFuture<Void> stopping = CompletableFuture.runAsync(vm::stop, threads);
        try {
            vm.pause();
            vm.resume();
        } catch (IllegalStateException e) {
            // the stop came first: refused, which is right
        }
        stopping.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        assertEquals(VmResult.Reason.STOPPED, vm.await(WAIT).reason());
        vm.destroy();
    }
}
