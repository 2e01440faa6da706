package org.nxia.vmm.spi;

/**
 * A range of guest RAM as a file another process can map (a vhost-user back-end such as
 * virtiofsd reads and writes guest buffers there itself). The backend keeps the file
 * descriptor; it is valid while the partition is open.
 *
 * @param guestAddress where the guest sees the range
 * @param size         its length in bytes
 * @param hostAddress  where this process has it mapped
 * @param fd           a file descriptor of the file that holds it
 * @param fdOffset     where in that file it starts
 */
public record SharedRam(long guestAddress, long size, long hostAddress, int fd, long fdOffset) {

    public SharedRam {
        if (size <= 0 || fd < 0 || fdOffset < 0 || guestAddress < 0 || guestAddress > Long.MAX_VALUE - size) {
            throw new IllegalArgumentException("shared RAM at 0x%x of %d bytes, fd %d at %d".formatted(guestAddress, size, fd, fdOffset));
        }
    }
}
