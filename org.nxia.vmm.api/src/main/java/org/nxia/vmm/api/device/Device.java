package org.nxia.vmm.api.device;

import org.osgi.annotation.versioning.ConsumerType;

/** One device of one VM. Closed when the VM is destroyed. */
@ConsumerType
public interface Device extends AutoCloseable {

    /** The factory's type id. */
    String type();

    /** The device's counters and diagnostics, as data (a record); not what a snapshot keeps. */
    Record state();

    /**
     * What a snapshot keeps of this device: guest-visible registers and configuration, encoded
     * by the device (its own versioned record), never counters. Called while the VM is paused.
     *
     * @throws UnsupportedOperationException if this device cannot be saved (the snapshot is refused, naming it)
     */
    default byte[] saveState() {
        throw new UnsupportedOperationException("device " + type() + " cannot be saved in a snapshot");
    }

    /**
     * Puts a device that was just created from the same configuration into the state
     * {@link #saveState} returned, before any vCPU runs. The bytes come from a snapshot file
     * and are hostile: a malformed or out-of-range state is refused with
     * {@link IllegalArgumentException} and leaves the device as created.
     *
     * @throws UnsupportedOperationException if this device cannot be restored
     */
    default void restoreState(byte[] saved) {
        throw new UnsupportedOperationException("device " + type() + " cannot be restored from a snapshot");
    }

    @Override
    default void close() {
    }
}
