package org.nxia.device.virtio.internal.queue;

import java.io.Serial;

/**
 * A virtqueue the driver set up or filled in a way the virtio 1.x spec forbids:
 * bad ring geometry at activation, a malformed descriptor chain, an available
 * index that cannot be true, or a saved state that does not hold together. The
 * message names the problem.
 *
 * <p>When {@link SplitQueue#next()} throws it the queue is broken: the device
 * sets {@code DEVICE_NEEDS_RESET} and waits for the driver to reset it.
 */
public final class VirtqueueException extends RuntimeException {
    @Serial
    private static final long serialVersionUID = 1L;

    public VirtqueueException(String message) {
        super(message);
    }
}
