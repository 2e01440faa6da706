package org.nxia.portal.internal;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.api.device.MmioDevice;

/**
 * A doorbell as a one-page MMIO window: every guest store is one exit that
 * counts a ring, unparks the waiter and, while the doorbell is linked to
 * another VM without the hypervisor's help, raises that VM's line. Nothing
 * allocates on that path. (A link the hypervisor carries takes the store
 * before it exits: see {@link Link}.)
 */
final class DoorbellPage implements MmioDevice {

    /** How long a waiter spins before it parks: a running guest usually answers within this. */
    static final long SPIN_NANOS = 20_000;

    /** WHY atomic: every vCPU of a VM may store to the doorbell; a plain ++ would lose rings. */
    private final AtomicLong rings = new AtomicLong();
    private volatile Thread waiter;
    private volatile long gpa;
    private volatile InterruptLine forward;

    void gpa(long value) {
        gpa = value;
    }

    long gpa() {
        return gpa;
    }

    /** Raise {@code line} on every ring from now on; null stops. */
    void forward(InterruptLine line) {
        forward = line;
    }

    void ring() {
        rings.incrementAndGet();
        InterruptLine f = forward;
        if (f != null) {
            f.pulse();
        }
        Thread w = waiter;
        if (w != null) {
            LockSupport.unpark(w);
        }
    }

    long rings() {
        return rings.get();
    }

    long await(long seen, Duration timeout) throws InterruptedException {
        long now = System.nanoTime();
        long spinUntil = now + Math.min(SPIN_NANOS, timeout.toNanos());
        long deadline = now + timeout.toNanos();
        long r;
        while ((r = rings.get()) == seen && System.nanoTime() < spinUntil) {
            Thread.onSpinWait();
        }
        if (r != seen) {
            return r;
        }
        waiter = Thread.currentThread();
        try {
            while ((r = rings.get()) == seen) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    break;
                }
                LockSupport.parkNanos(this, left);
                if (Thread.interrupted()) {
                    throw new InterruptedException();
                }
            }
            return r;
        } finally {
            waiter = null;
        }
    }

    @Override
    public void write(long offset, int size, long value) {
        ring();
    }

    @Override
    public long read(long offset, int size) {
        return rings.get();
    }
}
