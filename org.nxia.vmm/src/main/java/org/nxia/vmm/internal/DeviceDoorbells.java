package org.nxia.vmm.internal;

import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import org.nxia.vmm.api.Doorbell;
import org.nxia.vmm.api.Partition;
import org.nxia.vmm.internal.bus.Bus;

/**
 * The doorbells a VM's devices hold ({@code DeviceContext.createDoorbell}):
 * created on the partition for addresses inside a claimed MMIO window, all
 * closed when the VM stops so no device thread outlives it, and counted for
 * the VM's counters ({@code ioeventfd_doorbells}, {@code ioeventfd_writes}).
 */
final class DeviceDoorbells {

    private final Partition partition;
    private final Bus bus;
    private final Set<Counted> open = ConcurrentHashMap.newKeySet();
    private final AtomicLong writes = new AtomicLong();
    private boolean stopped;

    DeviceDoorbells(Partition partition, Bus bus) {
        this.partition = partition;
        this.bus = bus;
    }

    synchronized Optional<Doorbell> create(long address, int length) {
        Bus.MmioRoute route = bus.mmio(address);
        if (route == null || length < 1 || bus.mmio(address + length - 1) != route) {
            throw new IllegalArgumentException("a doorbell of %d bytes at 0x%x is not inside a claimed MMIO window"
                    .formatted(length, address));
        }
        if (stopped) {
            return Optional.empty();
        }
        return partition.createDoorbell(address, length).map(bell -> {
            Counted counted = new Counted(bell);
            open.add(counted);
            return counted;
        });
    }

    /** The VM stopped: closes every doorbell (their threads wake with 0) and refuses new ones. */
    synchronized void closeAll() {
        stopped = true;
        for (Counted bell : List.copyOf(open)) {
            bell.close();
        }
    }

    /** Doorbells open now. */
    long open() {
        return open.size();
    }

    /** Guest writes the doorbells took without an exit. */
    long writes() {
        return writes.get();
    }

    /** The partition's doorbell, counting what it hands out. */
    private final class Counted implements Doorbell {
        private final Doorbell bell;

        Counted(Doorbell bell) {
            this.bell = bell;
        }

        @Override
        public long address() {
            return bell.address();
        }

        @Override
        public int length() {
            return bell.length();
        }

        @Override
        public long await() {
            long n = bell.await();
            writes.addAndGet(n);
            return n;
        }

        @Override
        public Optional<AutoCloseable> connect(org.nxia.vmm.api.InterruptLine line) {
            return bell.connect(line);
        }

        @Override
        public void close() {
            open.remove(this);
            bell.close();
        }
    }
}
