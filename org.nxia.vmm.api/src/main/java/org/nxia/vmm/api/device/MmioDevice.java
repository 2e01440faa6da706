package org.nxia.vmm.api.device;

import org.osgi.annotation.versioning.ConsumerType;

/** Serves a claimed MMIO window. Called on a vCPU thread for every access: must not allocate or block. */
@ConsumerType
public interface MmioDevice {

    /** A guest store of {@code size} (1 to 8) bytes at {@code offset} into the window. */
    void write(long offset, int size, long value);

    /** A guest load of {@code size} bytes at {@code offset} into the window. */
    long read(long offset, int size);
}
