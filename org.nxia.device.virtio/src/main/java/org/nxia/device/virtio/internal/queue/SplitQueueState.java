package org.nxia.device.virtio.internal.queue;

/**
 * The saved state of one activated split virtqueue: what a snapshot records and
 * {@link SplitQueue#restore} takes back. It is data, never the live queue, and a
 * restore treats it as untrusted input: a snapshot file can be edited, and its
 * addresses point into guest memory the guest controls.
 *
 * @param size           queue size, a power of two in 1..32768
 * @param descriptorTable guest-physical address of the descriptor table
 * @param availRing      guest-physical address of the available (driver) ring
 * @param usedRing       guest-physical address of the used (device) ring
 * @param features       negotiated ring features: only {@link SplitQueue#F_INDIRECT_DESC}
 *                       and {@link SplitQueue#F_EVENT_IDX} bits
 * @param lastAvailIdx   the device's next available-ring index to consume, 0..65535
 * @param usedIdx        the device's used index (its own copy; never re-read from guest memory)
 * @param broken         whether the queue had failed and refuses work until reset
 */
public record SplitQueueState(
        int size,
        long descriptorTable,
        long availRing,
        long usedRing,
        long features,
        int lastAvailIdx,
        int usedIdx,
        boolean broken) {
}
