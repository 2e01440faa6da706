package org.nxia.vmm.internal.bus;

/** Serves a range of guest-physical MMIO addresses. Called on the vCPU thread; must not allocate. */
public interface MmioHandler {
    void write(long address, int size, long value);

    long read(long address, int size);
}
