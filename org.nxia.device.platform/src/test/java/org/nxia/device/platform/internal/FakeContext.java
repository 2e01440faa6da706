package org.nxia.device.platform.internal;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.InterruptLine;
import org.nxia.vmm.api.device.DeviceContext;
import org.nxia.vmm.api.device.MmioDevice;
import org.nxia.vmm.api.device.PortDevice;

/** A DeviceContext over heap memory that records what devices do: no KVM needed. */
final class FakeContext implements DeviceContext {

    final Map<Integer, PortDevice> ports = new HashMap<>();
    final ByteArrayOutputStream console = new ByteArrayOutputStream();
    final GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[1 << 16]));
    /** The line a device claimed, when {@link #interrupts} is on; records its level and pulses. */
    boolean interrupts;
    final FakeLine line = new FakeLine();
    Integer exitStatus;
    String reset;
    String failure;

    @Override
    public String vmId() {
        return "vm-test";
    }

    @Override
    public GuestMemory memory() {
        return memory;
    }

    @Override
    public void claimPorts(int first, int count, PortDevice device) {
        for (int p = first; p < first + count; p++) {
            if (ports.putIfAbsent(p, device) != null) {
                throw new IllegalArgumentException("port 0x" + Integer.toHexString(p) + " taken");
            }
        }
    }

    @Override
    public long claimMmio(long size, MmioDevice device) {
        throw new UnsupportedOperationException();
    }

    @Override
    public Optional<InterruptLine> claimIrq(int gsi) {
        line.gsi = gsi;
        return interrupts ? Optional.of(line) : Optional.empty();
    }

    static final class FakeLine implements InterruptLine {
        int gsi = -1;
        boolean level;
        int rises;

        @Override
        public int gsi() {
            return gsi;
        }

        @Override
        public void set(boolean asserted) {
            if (asserted && !level) {
                rises++;
            }
            level = asserted;
        }

        @Override
        public void pulse() {
            rises++;
        }
    }

    @Override
    public void console(byte[] bytes, int offset, int length) {
        console.write(bytes, offset, length);
    }

    @Override
    public void exit(int status) {
        exitStatus = status;
    }

    @Override
    public void reset(String how) {
        reset = how;
    }

    @Override
    public void fail(String reason) {
        failure = reason;
    }

    void out(int port, int value) {
        ports.get(port).write(port, 1, value);
    }

    int in(int port) {
        return ports.get(port).read(port, 1) & 0xff;
    }
}
