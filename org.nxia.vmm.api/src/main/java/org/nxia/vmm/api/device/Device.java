package org.nxia.vmm.api.device;

import org.osgi.annotation.versioning.ConsumerType;

/** One device of one VM. Closed when the VM is destroyed. */
@ConsumerType
public interface Device extends AutoCloseable {

    /** The factory's type id. */
    String type();

    /** The device's state as data (a record), for snapshots and diagnostics. */
    Record state();

    @Override
    default void close() {
    }
}
