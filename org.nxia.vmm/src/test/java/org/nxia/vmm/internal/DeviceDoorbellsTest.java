package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.Partition;
import org.nxia.vmm.spi.Vcpu;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.internal.bus.Bus;

/** The VM's side of device doorbells: only inside claimed windows, counted, and all closed when the VM stops. */
class DeviceDoorbellsTest {

    /** A doorbell that has been rung {@code pending} times. */
    static final class Bell implements Doorbell {
        final long address;
        long pending;
        boolean closed;

        Bell(long address) {
            this.address = address;
        }

        @Override
        public long address() {
            return address;
        }

        @Override
        public int length() {
            return 4;
        }

        @Override
        public long await() {
            long n = closed ? 0 : pending;
            pending = 0;
            return n;
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    /** The hypervisor side: hands out {@link Bell}s, or none. */
    static final class BellPartition implements Partition {
        final List<Bell> bells = new ArrayList<>();
        boolean hasDoorbells = true;

        @Override
        public GuestMemory memory() {
            return GuestMemory.of(0, MemorySegment.ofArray(new byte[4096]));
        }

        @Override
        public Vcpu createVcpu(int id) {
            throw new UnsupportedOperationException();
        }

        @Override
        public Optional<Doorbell> createDoorbell(long address, int length) {
            if (!hasDoorbells) {
                return Optional.empty();
            }
            Bell bell = new Bell(address);
            bells.add(bell);
            return Optional.of(bell);
        }

        @Override
        public Map<String, Long> statistics() {
            return Map.of();
        }

        @Override
        public void close() {
        }
    }

    private final BellPartition partition = new BellPartition();
    private final Bus bus = new Bus();
    private final DeviceDoorbells doorbells = new DeviceDoorbells(partition, bus);

    DeviceDoorbellsTest() {
        bus.addMmio(0xd000_0000L, 0x1000, new MmioDevice() {
            @Override
            public void write(long offset, int size, long value) {
            }

            @Override
            public long read(long offset, int size) {
                return 0;
            }
        });
    }

    @Test
    void doorbellOutsideEveryClaimedWindowIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> doorbells.create(0xe000_0000L, 4));
        assertEquals("a doorbell of 4 bytes at 0xe0000000 is not inside a claimed MMIO window", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> doorbells.create(0xd000_0ffeL, 4), "straddles the window's end");
        assertTrue(partition.bells.isEmpty());
    }

    @Test
    void countsOpenDoorbellsAndTheWritesTheyTook() {
        Doorbell bell = doorbells.create(0xd000_0050L, 4).orElseThrow();
        assertEquals(1, doorbells.open());
        partition.bells.getFirst().pending = 3;
        assertEquals(3, bell.await());
        assertEquals(3, doorbells.writes());
        bell.close();
        assertTrue(partition.bells.getFirst().closed);
        assertEquals(0, doorbells.open());
    }

    @Test
    void stoppingClosesEveryDoorbellAndRefusesNewOnes() {
        doorbells.create(0xd000_0050L, 4).orElseThrow();
        doorbells.create(0xd000_0054L, 4).orElseThrow();
        doorbells.closeAll();
        assertTrue(partition.bells.stream().allMatch(b -> b.closed));
        assertEquals(0, doorbells.open());
        assertTrue(doorbells.create(0xd000_0050L, 4).isEmpty(), "a stopped VM hands out no doorbell");
    }

    @Test
    void aBackendWithoutDoorbellsGivesNone() {
        partition.hasDoorbells = false;
        assertTrue(doorbells.create(0xd000_0050L, 4).isEmpty());
        assertEquals(0, doorbells.open());
    }

    @Test
    void aHeldDoorbellGivesItsWritesOnlyOnRelease() throws Exception {
        Doorbell bell = doorbells.create(0xd000_0050L, 4).orElseThrow();
        partition.bells.getFirst().pending = 3;
        doorbells.hold();
        CompletableFuture<Long> took = CompletableFuture.supplyAsync(bell::await);
        assertThrows(TimeoutException.class, () -> took.get(200, TimeUnit.MILLISECONDS), "held while paused");
        assertEquals(0, doorbells.working());
        doorbells.release();
        assertEquals(3, took.get(10, TimeUnit.SECONDS));
        assertEquals(1, doorbells.working(), "its thread works on the writes until it awaits again");
    }

    @Test
    void quietOnlyOnceEveryDeviceThreadIsBackInAwait() throws Exception {
        Doorbell bell = doorbells.create(0xd000_0050L, 4).orElseThrow();
        partition.bells.getFirst().pending = 1;
        assertEquals(1, bell.await());
        assertFalse(doorbells.awaitQuiet(TimeUnit.MILLISECONDS.toNanos(100)), "the device thread still works");
        assertEquals(0, bell.await());   // back for more: idle
        assertTrue(doorbells.awaitQuiet(0));
    }

    @Test
    void stoppingWakesAHeldThreadWithNothing() throws Exception {
        Doorbell bell = doorbells.create(0xd000_0050L, 4).orElseThrow();
        partition.bells.getFirst().pending = 2;
        doorbells.hold();
        CompletableFuture<Long> took = CompletableFuture.supplyAsync(bell::await);
        assertThrows(TimeoutException.class, () -> took.get(100, TimeUnit.MILLISECONDS));
        doorbells.closeAll();
        assertEquals(0, took.get(10, TimeUnit.SECONDS), "a stopped VM's writes are not handed out");
        assertEquals(0, doorbells.working());
        assertTrue(doorbells.awaitQuiet(0));
    }
}
