package org.nxia.vmm.spi;

import org.osgi.annotation.versioning.ProviderType;

/**
 * Host shared memory mapped into one VM's guest-physical address space (a
 * Portal region). Closing it removes the range from the guest: a later guest
 * access exits as an unclaimed MMIO access. The host memory stays the caller's.
 */
@ProviderType
public interface SharedMapping extends AutoCloseable {

    /** Where the guest sees the memory. */
    long gpa();

    /** Bytes mapped. */
    long size();

    /** Whether guest writes are refused (a guest write then exits and stops the VM). */
    boolean readOnly();

    @Override
    void close();
}
