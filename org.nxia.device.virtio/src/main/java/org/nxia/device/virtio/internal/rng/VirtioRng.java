package org.nxia.device.virtio.internal.rng;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.security.SecureRandom;

import org.nxia.device.virtio.internal.mmio.SingleQueueBackend;
import org.nxia.device.virtio.internal.queue.DescriptorChain;
import org.nxia.vmm.spi.GuestMemory;

/** virtio-rng (device ID 4): fills the driver's writable buffers from the host's secure random source. */
final class VirtioRng extends SingleQueueBackend {

    /** At most this much per chain, so one request cannot keep the vCPU busy for long. */
    static final int MAX_PER_CHAIN = 64 * 1024;

    private final GuestMemory memory;
    private final SecureRandom random = new SecureRandom();
    private final byte[] buffer = new byte[4096];
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
    public long readConfig(int offset, int size) {
        return 0;
    }

    @Override
    protected long serve(DescriptorChain chain) {
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
        return written;
    }

    record State(long bytesServed) {
    }

    @Override
    public Record state() {
        return new State(bytesServed);
    }
}
