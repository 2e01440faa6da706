package org.nxia.vmm.api.device;

import org.osgi.annotation.versioning.ConsumerType;

/** Serves claimed I/O ports. Called on a vCPU thread for every access: must not allocate or block. */
@ConsumerType
public interface PortDevice {

    /** A guest {@code out} of {@code size} (1, 2 or 4) bytes. */
    void write(int port, int size, int value);

    /** A guest {@code in}; the low {@code size} bytes of the result are used. */
    int read(int port, int size);
}
