package org.nxia.device.virtio.internal.rng;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.security.SecureRandom;

import org.nxia.device.virtio.internal.mmio.VirtioBackend;
import org.nxia.device.virtio.internal.queue.DescriptorChain;
import org.nxia.device.virtio.internal.queue.SplitQueue;
import org.nxia.vmm.api.GuestMemory;

/** virtio-rng (device ID 4): fills the driver's writable buffers from the host's secure random source. */
final class VirtioRng implements VirtioBackend {

    /** At most this much per chain, so one request cannot keep the vCPU busy for long. */
    static final int MAX_PER_CHAIN = 64 * 1024;

    private final GuestMemory memory;
    private final SecureRandom random = new SecureRandom();
    private final byte[] buffer = new byte[4096];
    private SplitQueue queue;
    private long bytesServed;

    VirtioRng(GuestMemory memory) {
        this.memory = memory;
    }

    @Override
    public int deviceId() {
        return 4;
    }

    @Override
    public long features() {
        return 0;
    }

    @Override
    public int queueCount() {
        return 1;
    }

    @Override
    public long readConfig(int offset, int size) {
        return 0;
    }

    @Override
    public void activate(long features, SplitQueue[] queues) {
        queue = queues[0];
    }

    @Override
    public void process(int index) {
        if (queue == null || !queue.isActive()) {
            return;
        }
        DescriptorChain chain;
        while ((chain = queue.next()) != null) {
            long written = 0;
            for (int i = chain.readableCount(); i < chain.count() && written < MAX_PER_CHAIN; i++) {
                long address = chain.address(i);
                long length = Math.min(chain.length(i), MAX_PER_CHAIN - written);
                MemorySegment target = memory.slice(address, length);
                for (long done = 0; done < length; ) {
                    int n = (int) Math.min(buffer.length, length - done);
                    random.nextBytes(buffer);
                    MemorySegment.copy(buffer, 0, target, ValueLayout.JAVA_BYTE, done, n);
                    done += n;
                }
                written += length;
            }
            bytesServed += written;
            queue.pushUsed(chain.head(), written);
        }
    }

    @Override
    public void reset() {
        queue = null;
    }

    record State(long bytesServed) {
    }

    @Override
    public Record state() {
        return new State(bytesServed);
    }
}
