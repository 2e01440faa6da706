package org.nxia.device.virtio.internal.console;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;

import org.nxia.device.virtio.internal.mmio.VirtioBackend;
import org.nxia.device.virtio.internal.queue.DescriptorChain;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.device.DeviceContext;

/**
 * virtio-console (device ID 3), one port: transmitq (1) goes to the VM's
 * console; what the host sends goes into the driver's receiveq (0) buffers,
 * now if the driver has posted some, else when it does. Callers hold the
 * transport's lock (the host sends from its own thread).
 */
final class VirtioConsole implements VirtioBackend {

    static final int RECEIVEQ = 0;
    static final int TRANSMITQ = 1;
    static final int MAX_PENDING = 1 << 20;

    private final GuestMemory memory;
    private final DeviceContext context;
    private final ArrayDeque<byte[]> pending = new ArrayDeque<>();
    private final byte[] buffer = new byte[4096];
    private int pendingBytes;
    private int pendingOffset;
    private SplitQueue[] queues;
    private long transmitted;
    private long received;
    private long dropped;

    VirtioConsole(GuestMemory memory, DeviceContext context) {
        this.memory = memory;
        this.context = context;
    }

    @Override
    public int deviceId() {
        return 3;
    }

    @Override
    public long features() {
        return 0;
    }

    @Override
    public int queueCount() {
        return 2;
    }

    @Override
    public long readConfig(int offset, int size) {
        return 0;
    }

    @Override
    public void activate(long features, SplitQueue[] active) {
        this.queues = active;
        deliver();
    }

    @Override
    public void process(int index) {
        if (queues == null) {
            return;
        }
        if (index == TRANSMITQ) {
            transmit(queues[TRANSMITQ]);
        }
        deliver();
    }

    private void transmit(SplitQueue q) {
        if (!q.isActive()) {
            return;
        }
        DescriptorChain chain;
        while ((chain = q.next()) != null) {
            for (int i = 0; i < chain.readableCount(); i++) {
                long address = chain.address(i);
                long length = chain.length(i);
                for (long done = 0; done < length; ) {
                    int n = (int) Math.min(buffer.length, length - done);
                    MemorySegment.copy(memory.slice(address + done, n), ValueLayout.JAVA_BYTE, 0, buffer, 0, n);
                    context.console(buffer, 0, n);
                    done += n;
                    transmitted += n;
                }
            }
            q.pushUsed(chain.head(), 0);
        }
    }

    /** Host input: queued, then delivered into whatever receive buffers the driver has posted. */
    void send(byte[] bytes) {
        if (pendingBytes + bytes.length > MAX_PENDING) {
            dropped += bytes.length;   // the guest is not reading: keep memory bounded
            return;
        }
        pending.add(bytes.clone());
        pendingBytes += bytes.length;
        deliver();
    }

    private void deliver() {
        if (queues == null || !queues[RECEIVEQ].isActive() || queues[RECEIVEQ].isBroken()) {
            return;
        }
        SplitQueue q = queues[RECEIVEQ];
        while (!pending.isEmpty()) {
            DescriptorChain chain = q.next();
            if (chain == null) {
                return;
            }
            long written = 0;
            for (int i = chain.readableCount(); i < chain.count() && !pending.isEmpty(); i++) {
                long address = chain.address(i);
                long room = chain.length(i);
                while (room > 0 && !pending.isEmpty()) {
                    byte[] head = pending.peek();
                    int n = (int) Math.min(room, head.length - pendingOffset);
                    MemorySegment.copy(head, pendingOffset, memory.slice(address, n), ValueLayout.JAVA_BYTE, 0, n);
                    address += n;
                    room -= n;
                    written += n;
                    pendingOffset += n;
                    pendingBytes -= n;
                    if (pendingOffset == head.length) {
                        pending.poll();
                        pendingOffset = 0;
                    }
                }
            }
            received += written;
            q.pushUsed(chain.head(), written);
        }
    }

    @Override
    public void reset() {
        queues = null;
    }

    record State(long transmitted, long received, long dropped, int pendingBytes) {
    }

    @Override
    public Record state() {
        return new State(transmitted, received, dropped, pendingBytes);
    }
}
