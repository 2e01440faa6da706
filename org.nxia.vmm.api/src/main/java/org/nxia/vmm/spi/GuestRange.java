package org.nxia.vmm.spi;

/**
 * A page-aligned range of guest-physical memory.
 *
 * @param gpa    where it starts, a multiple of 4096
 * @param length its bytes, a positive multiple of 4096
 */
public record GuestRange(long gpa, long length) {

    public static final long PAGE = 4096;

    public GuestRange {
        if (gpa < 0 || gpa % PAGE != 0 || length <= 0 || length % PAGE != 0 || gpa > Long.MAX_VALUE - length) {
            throw new IllegalArgumentException("a guest range needs page-aligned start and length: 0x%x + 0x%x".formatted(gpa, length));
        }
    }

    /** The first address past it. */
    public long end() {
        return gpa + length;
    }
}
