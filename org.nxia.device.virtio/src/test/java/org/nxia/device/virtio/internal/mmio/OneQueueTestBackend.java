package org.nxia.device.virtio.internal.mmio;

import org.nxia.device.virtio.internal.queue.SplitQueue;

/**
 * A test device with one queue and nothing else (no features, an empty configuration): a test
 * says only what its {@link #process} does with the queue and what {@link #state} it saves.
 */
abstract class OneQueueTestBackend implements VirtioBackend {
    /** The queue the driver set up; null before activation and after a reset. */
    protected SplitQueue queue;

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
    public void reset() {
        queue = null;
    }

    @Override
    public Record state() {
        return null;
    }
}
