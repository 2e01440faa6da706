package org.nxia.device.virtio.internal.mmio;

import org.nxia.device.virtio.internal.queue.SplitQueue;

/**
 * The device-type half of a virtio device (rng, blk, console); the transport
 * half is {@link VirtioMmioTransport}. Called under the transport's lock: on
 * the vCPU thread, or on the device's notify thread for a kick by doorbell.
 */
public interface VirtioBackend {

    /** The virtio device ID (4 rng, 2 blk, 3 console, ...). */
    int deviceId();

    /** Device-specific feature bits (the transport adds VERSION_1, INDIRECT_DESC, EVENT_IDX). */
    long features();

    int queueCount();

    /** A read of {@code size} bytes at {@code offset} into the device's config space. */
    long readConfig(int offset, int size);

    /** The driver set DRIVER_OK: {@code queues} are the ones it made ready (null where it did not). */
    void activate(long features, SplitQueue[] queues);

    /**
     * The driver notified {@code queue}: serve every available chain.
     *
     * @throws org.nxia.device.virtio.internal.queue.VirtqueueException when the driver broke the protocol
     */
    void process(int queue);

    /** The driver reset the device: forget the queues. */
    void reset();

    /** The device type's counters and diagnostics (not what a snapshot keeps). */
    Record state();

    /**
     * The transport was restored from a snapshot with DRIVER_OK, after
     * {@link #activate}: a device whose host-side state no snapshot keeps
     * tells its driver here (vsock: the transport reset event).
     *
     * @throws org.nxia.device.virtio.internal.queue.VirtqueueException when the driver's rings are broken
     */
    default void restored() {
    }
}
