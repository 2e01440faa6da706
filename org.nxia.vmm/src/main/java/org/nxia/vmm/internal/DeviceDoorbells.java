package org.nxia.vmm.internal;

import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.Partition;
import org.nxia.vmm.internal.bus.Bus;

/**
 * The doorbells a VM's devices hold ({@code DeviceContext.createDoorbell}):
 * created on the partition for addresses inside a claimed MMIO window, all
 * closed when the VM stops so no device thread outlives it, and counted for
 * the VM's counters ({@code ioeventfd_doorbells}, {@code ioeventfd_writes}).
 *
 * <p>While the VM is paused they are {@linkplain #hold() held}: a device
 * thread that was rung gets the writes only once the VM resumes (or stops), so
 * a paused VM's devices do no doorbell work. A device thread is "working" from
 * the moment {@code await} hands it writes until it calls {@code await} again;
 * {@link #awaitQuiet} waits until none is.
 */
final class DeviceDoorbells {

    private final Partition partition;
    private final Bus bus;
    private final Set<Counted> open = ConcurrentHashMap.newKeySet();
    private final AtomicLong writes = new AtomicLong();
    private boolean stopped;
    private boolean held;
    /** Doorbells whose thread took writes and has not come back to await: device work in flight. */
    private int working;

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
        notifyAll();
    }

    /** The VM pauses: writes that ring from now on wait in {@code await} until {@link #release}. */
    synchronized void hold() {
        held = true;
    }

    /** The VM resumes (or a pause was abandoned): held writes go to their device threads. */
    synchronized void release() {
        held = false;
        notifyAll();
    }

    /**
     * Waits until no device thread is working on writes it took before the
     * hold, for at most {@code timeoutNanos}.
     *
     * @return whether the devices are quiet
     */
    synchronized boolean awaitQuiet(long timeoutNanos) throws InterruptedException {
        long deadline = System.nanoTime() + timeoutNanos;
        while (working > 0 && !stopped) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            TimeUnit.NANOSECONDS.timedWait(this, left);
        }
        return true;
    }

    /** Device threads working now. */
    synchronized int working() {
        return working;
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
        /** Guarded by the enclosing instance. */
        private boolean busy;

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
            idle();
            long n = bell.await();
            synchronized (DeviceDoorbells.this) {
                // A paused VM's device must not touch guest memory or raise interrupts: hold the writes.
                // No deadline on purpose: a VM may stay paused as long as its owner wants; stop or resume ends it.
                while (held && !stopped && n > 0) {
                    try {
                        DeviceDoorbells.this.wait();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return 0;
                    }
                }
                if (stopped) {
                    return 0;   // closed while held: the writes are for a VM that no longer runs
                }
                if (n > 0) {
                    busy = true;
                    working++;
                }
            }
            writes.addAndGet(n);
            return n;
        }

        private void idle() {
            synchronized (DeviceDoorbells.this) {
                if (busy) {
                    busy = false;
                    working--;
                    DeviceDoorbells.this.notifyAll();
                }
            }
        }

        @Override
        public Optional<AutoCloseable> connect(org.nxia.vmm.spi.InterruptLine line) {
            return bell.connect(line);
        }

        @Override
        public void close() {
            open.remove(this);
            idle();
            bell.close();
        }
    }
}
