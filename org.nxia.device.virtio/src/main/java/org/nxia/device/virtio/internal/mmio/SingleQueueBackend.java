package org.nxia.device.virtio.internal.mmio;

import org.nxia.device.virtio.internal.queue.DescriptorChain;
import org.nxia.device.virtio.internal.queue.SplitQueue;

/** A device with one request queue: every available chain is served, then returned with what was written. */
public abstract class SingleQueueBackend implements VirtioBackend {

    private SplitQueue queue;

    @Override
    public final int queueCount() {
        return 1;
    }

    @Override
    public final void activate(long features, SplitQueue[] queues) {
        queue = queues[0];
    }

    @Override
    public final void process(int index) {
        if (queue == null || !queue.isActive()) {
            return;
        }
        DescriptorChain chain;
        while ((chain = queue.next()) != null) {
            queue.pushUsed(chain.head(), serve(chain));
        }
    }

    /** Serves one request; returns the bytes written into the chain's writable buffers. */
    protected abstract long serve(DescriptorChain chain);

    @Override
    public final void reset() {
        queue = null;
    }
}
