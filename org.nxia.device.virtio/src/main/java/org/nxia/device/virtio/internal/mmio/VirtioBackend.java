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

    /**
     * Whether another process serves the queues (a vhost-user back-end such as virtiofsd): the
     * device's side of the rings (the used ring, its flags, {@code avail_event}) is then that
     * process's alone, and the transport's {@link SplitQueue}s only hold the layout it was given.
     * The transport then passes each kick on to {@link #process} and leaves the rings alone.
     *
     * <p>WHY: the transport would otherwise publish {@code avail_event} from its own available
     * index, which never moves since it takes no chain, over the one the back-end wrote; with
     * EVENT_IDX the driver then stops kicking and its next request waits forever (issue 14 §3:
     * vm:exec --share hung when the write came after the back-end's).
     */
    default boolean servedElsewhere() {
        return false;
    }

    /**
     * Interrupt-status bits this device always shows besides those the transport set: for a
     * device whose line others raise too (virtio-pmem's is its Portal region's doorbell), so the
     * driver never finds an interrupt of its line with no cause.
     */
    default int interruptStatusAlways() {
        return 0;
    }

    /** The driver reset the device: forget the queues. */
    void reset();

    /** The device type's counters and diagnostics (not what a snapshot keeps). */
    Record state();

    /**
     * The device type's own saved state, in {@link org.nxia.vmm.api.device.SavedStateCodec}'s
     * encoding: guest-visible configuration the device's parameters do not fix
     * (virtio-net's MAC), never counters; empty when there is none.
     */
    default byte[] saveState() {
        return new byte[0];
    }

    /**
     * Checks what {@link #saveState} wrote and applies nothing: the transport
     * checks the whole of a saved state before it applies any of it.
     *
     * @return the step that applies it, run once everything was checked
     * @throws IllegalArgumentException for a malformed or out-of-range state
     */
    default Runnable checkState(byte[] saved) {
        if (saved.length != 0) {
            throw new IllegalArgumentException(saved.length + " bytes of device state for a device that saves none");
        }
        return () -> { };
    }

    /**
     * The transport was restored from a snapshot with DRIVER_OK, after
     * {@link #activate}: a device whose host-side state no snapshot keeps
     * tells its driver here (vsock: the transport reset event).
     *
     * @return whether the driver must reread the configuration space (the transport then signals a configuration change)
     * @throws org.nxia.device.virtio.internal.queue.VirtqueueException when the driver's rings are broken
     */
    default boolean restored() {
        return false;
    }
}
