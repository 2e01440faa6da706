package org.nxia.portal.internal;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;

import org.nxia.vmm.spi.Doorbell;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.spi.SharedMapping;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;

/**
 * The VMM's side of a Portal device at its own seam, {@link DeviceContext}:
 * it records what the device asks of the VM (windows, mappings, doorbells)
 * so a unit test can check the Portal bundle's bookkeeping without a VM.
 */
final class FakeVmContext implements DeviceContext {

    /** One mapPortal call and whether it is still open. */
    static final class Mapping implements SharedMapping {
        final String name;
        final MemorySegment region;
        final boolean readOnly;
        final long doorbellGpa;
        final long gpa;
        final Optional<Path> file;
        boolean closed;

        Mapping(String name, MemorySegment region, Optional<Path> file, boolean readOnly, long doorbellGpa, long gpa) {
            this.name = name;
            this.region = region;
            this.file = file;
            this.readOnly = readOnly;
            this.doorbellGpa = doorbellGpa;
            this.gpa = gpa;
        }

        @Override
        public long gpa() {
            return gpa;
        }

        @Override
        public long size() {
            return region.byteSize();
        }

        @Override
        public boolean readOnly() {
            return readOnly;
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    /** A hypervisor doorbell that joins a line when {@link #joins} says so. */
    final class HvDoorbell implements Doorbell {
        final long address;
        boolean closed;
        InterruptLine connectedTo;
        boolean irqfdClosed;

        HvDoorbell(long address) {
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
            return 0;
        }

        @Override
        public Optional<AutoCloseable> connect(InterruptLine line) {
            if (!joins) {
                return Optional.empty();
            }
            connectedTo = line;
            return Optional.of(() -> irqfdClosed = true);
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    /** A line that counts its pulses. */
    static final class Line implements InterruptLine {
        final int gsi;
        final AtomicInteger pulses = new AtomicInteger();

        Line(int gsi) {
            this.gsi = gsi;
        }

        @Override
        public int gsi() {
            return gsi;
        }

        @Override
        public void set(boolean asserted) {
            throw new AssertionError("a doorbell pulses");
        }

        @Override
        public void pulse() {
            pulses.incrementAndGet();
        }
    }

    private final String vmId;
    /** Whether this "backend" has ioeventfd doorbells, and whether they can join another VM's line (irqfd). */
    final boolean doorbells;
    final boolean joins;
    final List<Long> windows = new ArrayList<>();
    final List<MmioDevice> windowDevices = new ArrayList<>();
    final List<Mapping> mappings = new ArrayList<>();
    final List<HvDoorbell> hvDoorbells = new ArrayList<>();
    private long nextWindow = 0xd000_0000L;

    FakeVmContext(String vmId, boolean doorbells, boolean joins) {
        this.vmId = vmId;
        this.doorbells = doorbells;
        this.joins = joins;
    }

    @Override
    public String vmId() {
        return vmId;
    }

    @Override
    public GuestMemory memory() {
        throw new AssertionError("a portal device does not touch guest RAM");
    }

    @Override
    public void claimPorts(int first, int count, PortDevice device) {
        throw new AssertionError("a portal device has no ports");
    }

    @Override
    public long claimMmio(long size, MmioDevice device) {
        long at = nextWindow;
        nextWindow += size;
        windows.add(at);
        windowDevices.add(device);
        return at;
    }

    @Override
    public SharedMapping mapPortal(String name, MemorySegment region, boolean readOnly, long doorbellGpa) {
        throw new AssertionError("a grant names the region's file (or none) when it maps the region");
    }

    @Override
    public SharedMapping mapPortal(String name, MemorySegment region, Optional<Path> file, boolean readOnly, long doorbellGpa) {
        Mapping m = new Mapping(name, region, file, readOnly, doorbellGpa, 0x1_0000_0000L + mappings.size() * region.byteSize());
        mappings.add(m);
        return m;
    }

    @Override
    public Optional<Doorbell> createDoorbell(long address, int length) {
        if (!doorbells) {
            return Optional.empty();
        }
        HvDoorbell d = new HvDoorbell(address);
        hvDoorbells.add(d);
        return Optional.of(d);
    }

    @Override
    public void console(byte[] bytes, int offset, int length) {
    }

    @Override
    public void exit(int status) {
    }

    @Override
    public void reset(String how) {
    }

    @Override
    public void fail(String reason) {
    }
}
