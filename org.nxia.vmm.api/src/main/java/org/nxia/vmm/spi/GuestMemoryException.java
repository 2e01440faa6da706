package org.nxia.vmm.spi;

import java.io.Serial;

/**
 * A guest-physical range that is not wholly inside guest memory. Thrown
 * instead of touching anything outside the guest's RAM.
 */
public final class GuestMemoryException extends RuntimeException {
    @Serial
    private static final long serialVersionUID = 1L;

    private final long address;
    private final long length;

    public GuestMemoryException(long address, long length, long base, long size) {
        super("guest range [0x%x, +0x%x) is outside guest memory [0x%x, 0x%x)"
                .formatted(address, length, base, base + size));
        this.address = address;
        this.length = length;
    }

    public long address() {
        return address;
    }

    public long length() {
        return length;
    }
}
