package org.nxia.backend.kvm.internal;

import java.io.Serial;

import org.nxia.vmm.spi.HypervisorException;

/** A KVM or libc call failed; the message names the call, its errno and what it was given. */
final class KvmException extends HypervisorException {
    @Serial
    private static final long serialVersionUID = 1L;

    KvmException(String call, int errno, String message) {
        super(call, errno, message);
    }

    static KvmException of(String call, int errno, String context) {
        String text = call + " failed: " + Libc.errnoName(errno) + " (" + Libc.strerror(errno) + ")"
                + (context.isEmpty() ? "" : "; " + context);
        return new KvmException(call, errno, text);
    }
}
