package org.nxia.vmm.spi;

import java.io.Serial;

/**
 * A hypervisor call failed. The message names the call and what to do.
 */
public class HypervisorException extends RuntimeException {
    @Serial
    private static final long serialVersionUID = 1L;

    private final String call;
    private final int errno;

    public HypervisorException(String call, int errno, String message) {
        super(message);
        this.call = call;
        this.errno = errno;
    }

    /** The call that failed, e.g. {@code ioctl(KVM_CREATE_VM)}. */
    public String call() {
        return call;
    }

    /** The OS error number, 0 when none applies. */
    public int errno() {
        return errno;
    }
}
