package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nxia.vmm.api.LiveRam;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.internal.memhv.InMemoryHypervisor;
import org.nxia.vmm.internal.memhv.Script;

/**
 * A running VM's RAM read live, on the in-memory hypervisor (its stand-in dirty log): every touched
 * page first, then only what the guest wrote since and what the VMM wrote ever since, the state
 * without RAM once paused, and the refusals.
 */
class VmCoreLiveRamTest {

    private static final long GUEST_PAGE = 0x30_0000;
    private static final long HOST_PAGE = 0x31_0000;

    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final TestVms vms = new TestVms();
    private final InMemoryHypervisor hv = new InMemoryHypervisor(id -> Script.untilStopped());

    @AfterEach
    void shutdown() {
        threads.shutdownNow();
    }

    private VmCore running() {
        VmCore vm = vms.micro(hv, threads, VmCore.DESTROY_WAIT);
        vm.start();
        return vm;
    }

    private static int bit(long[] bitmap, long address) {
        long page = address / LiveRam.PAGE;
        return (int) (bitmap[(int) (page >>> 6)] >>> page) & 1;
    }

    private static long count(long[] bitmap) {
        long n = 0;
        for (long w : bitmap) {
            n += Long.bitCount(w);
        }
        return n;
    }

    @Test
    void everyTouchedPageFirstThenWhatTheGuestWroteSinceAndWhatTheVmmEverWrote() {
        VmCore vm = running();
        try (LiveRam live = vm.liveRam()) {
            assertEquals(vm.spec().memoryBytes(), live.bytes());
            long[] first = new long[live.words()];
            long pages = live.written(first);
            assertEquals(live.bytes() / LiveRam.PAGE, pages, "the in-memory partition counts all of RAM as touched");
            assertEquals(pages, count(first));

            long[] none = new long[live.words()];
            assertEquals(0, live.written(none), "nothing written since");
            assertEquals(0, count(none));

            hv.partition().guestWrite(GUEST_PAGE + 8, new byte[] {42});
            vm.memory().write(HOST_PAGE, new byte[] {7});
            long[] second = new long[live.words()];
            second[0] = 1;   // bits already set stay set
            assertEquals(2, live.written(second));
            assertEquals(1, bit(second, GUEST_PAGE));
            assertEquals(1, bit(second, HOST_PAGE));
            assertEquals(3, count(second));

            long[] third = new long[live.words()];
            assertEquals(1, live.written(third), "the VMM's page counts again: a view it took may be written later");
            assertEquals(1, bit(third, HOST_PAGE));
            assertEquals(0, bit(third, GUEST_PAGE), "the guest's page is not written again");

            MemorySegment page = MemorySegment.ofArray(new byte[(int) LiveRam.PAGE]);
            live.read(GUEST_PAGE, page);
            assertEquals(42, page.get(ValueLayout.JAVA_BYTE, 8));
            assertThrows(IndexOutOfBoundsException.class, () -> live.read(live.bytes() - LiveRam.PAGE + 1, page));
            assertThrows(IllegalArgumentException.class, () -> live.written(new long[live.words() - 1]));

            assertThrows(IllegalStateException.class, live::state, "a running VM's state is not saved");
            vm.pause();
            VmSnapshot state = live.state();
            assertTrue(state.ram().isEmpty(), "the state holds no RAM");
            assertEquals(1, state.vcpus().size());
            assertEquals(vm.spec(), state.spec());
            assertEquals(VmState.PAUSED, vm.state());
            vm.resume();
        }
        vm.destroy();
    }

    @Test
    void oneReaderAtATimeAndNoneOnceClosedOrDestroyed() {
        VmCore vm = running();
        LiveRam live = vm.liveRam();
        assertThrows(IllegalStateException.class, vm::liveRam, "one at a time");
        vm.pause();
        live.close();
        assertThrows(IllegalStateException.class, () -> live.written(new long[live.words()]));
        IllegalStateException closed = assertThrows(IllegalStateException.class, live::state, "paused, but this reader is closed");
        assertTrue(closed.getMessage().contains("closed"), closed.getMessage());
        vm.resume();
        LiveRam again = vm.liveRam();
        hv.partition().guestWrite(GUEST_PAGE, new byte[] {1});
        long[] bitmap = new long[again.words()];
        again.written(bitmap);
        assertEquals(vm.spec().memoryBytes() / LiveRam.PAGE, count(bitmap), "a new reader starts with every touched page");
        vm.destroy();
        IllegalStateException gone = assertThrows(IllegalStateException.class,
                () -> again.read(0, MemorySegment.ofArray(new byte[4096])));
        assertTrue(gone.getMessage().contains("destroyed"), gone.getMessage());
    }

    @Test
    void refusedBeforeItRunsAndWithDevices() throws Exception {
        VmCore created = vms.micro(hv, threads, VmCore.DESTROY_WAIT);
        assertThrows(IllegalStateException.class, created::liveRam);
        created.destroy();

        VmCore withDevice = vms.micro(hv, threads, VmCore.DESTROY_WAIT, new DeviceConfig("mmio", Map.of()));
        withDevice.start();
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, withDevice::liveRam);
        assertTrue(e.getMessage().contains("devices"), e.getMessage());
        withDevice.stop();
        withDevice.await(Duration.ofSeconds(10));
        withDevice.destroy();
    }

    @Test
    void theRamReadIsTheRamWritten() {
        VmCore vm = running();
        byte[] bytes = new byte[8192];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = (byte) (i * 31);
        }
        vm.memory().write(0x40_0000, bytes);
        try (LiveRam live = vm.liveRam()) {
            MemorySegment out = MemorySegment.ofArray(new byte[bytes.length]);
            live.read(0x40_0000, out);
            assertArrayEquals(bytes, out.toArray(ValueLayout.JAVA_BYTE));
        }
        vm.destroy();
    }
}
