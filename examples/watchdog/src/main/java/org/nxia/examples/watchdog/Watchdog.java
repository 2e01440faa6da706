package org.nxia.examples.watchdog;

import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

import org.nxia.vmm.api.device.Device;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.PortDevice;

/**
 * A watchdog on one I/O port. The guest's first write arms it and every write pets it; a read
 * returns how many pets it has counted. Once armed, a gap of more than the timeout between pets
 * resets the VM (which, for a micro-VM, stops it with reason RESET). The vCPU side only stores
 * a time and a count: no allocation, no lock.
 */
final class Watchdog implements Device, PortDevice {

    /** What {@code vm:info} shows of it. */
    record State(long pets, boolean armed, boolean expired, long timeoutMs) {
    }

    private final long timeoutNanos;
    private final long timeoutMs;
    private final DeviceContext context;
    private final ScheduledFuture<?> check;
    private volatile long lastPet;
    private volatile long pets;
    private volatile boolean expired;

    Watchdog(int port, long timeoutMs, DeviceContext context, ScheduledExecutorService checker) {
        this.timeoutMs = timeoutMs;
        this.timeoutNanos = TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        this.context = context;
        context.claimPorts(port, 1, this);
        long period = Math.max(1, timeoutMs / 4);   // an expiry is seen at most a quarter timeout late
        this.check = checker.scheduleAtFixedRate(this::check, period, period, TimeUnit.MILLISECONDS);
    }

    @Override
    public void write(int port, int size, int value) {
        lastPet = System.nanoTime();
        pets = pets + 1;   // only the VM's vCPU writes
    }

    @Override
    public int read(int port, int size) {
        return (int) pets;
    }

    /** On the checker thread. */
    void check() {
        if (pets > 0 && !expired && System.nanoTime() - lastPet > timeoutNanos) {
            expired = true;
            check.cancel(false);
            context.reset("watchdog: no pet within " + timeoutMs + " ms");
        }
    }

    @Override
    public String type() {
        return WatchdogFactory.TYPE;
    }

    @Override
    public Record state() {
        return new State(pets, pets > 0, expired, timeoutMs);
    }

    @Override
    public void close() {
        check.cancel(false);
    }
}
