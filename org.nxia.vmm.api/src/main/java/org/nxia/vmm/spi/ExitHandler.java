package org.nxia.vmm.spi;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Where a vCPU's port and MMIO exits go. Called on the vCPU thread for every
 * exit, so implementations must not allocate. To end the run, call
 * {@link Vcpu#requestStop()} from inside a method.
 */
@ConsumerType
public interface ExitHandler {

    /** A guest {@code out}: {@code size} is 1, 2 or 4 bytes. */
    void portWrite(int port, int size, int value);

    /** A guest {@code in}: return the value (low {@code size} bytes are used). */
    int portRead(int port, int size);

    /** A guest store to an address no RAM backs; {@code size} is 1 to 8 bytes. */
    void mmioWrite(long address, int size, long value);

    /** A guest load from an address no RAM backs. */
    long mmioRead(long address, int size);
}
