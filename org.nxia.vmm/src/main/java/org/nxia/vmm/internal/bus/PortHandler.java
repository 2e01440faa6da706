package org.nxia.vmm.internal.bus;

/** Serves a range of I/O ports. Called on the vCPU thread; must not allocate. */
public interface PortHandler {
    void write(int port, int size, int value);

    int read(int port, int size);
}
