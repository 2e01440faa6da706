package org.nxia.vmm.spi;

import java.util.Objects;

/**
 * Why {@link Vcpu#run} returned.
 *
 * @param kind   the class of stop
 * @param detail one line for people: the hardware reason, the suberror, the signal
 */
public record VcpuStop(Kind kind, String detail) {

    public VcpuStop {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(detail, "detail");
    }

    public enum Kind {
        /** {@link Vcpu#requestStop()} was called (by the exit handler or another thread). */
        REQUESTED,
        /** The guest executed {@code hlt} with interrupts off. */
        HALT,
        /** The guest triple-faulted or hit an exception it cannot take. */
        SHUTDOWN,
        /** The hypervisor refused to enter the guest (bad entry state). */
        FAIL_ENTRY,
        /** The hypervisor could not emulate something the guest did. */
        INTERNAL_ERROR,
        /** An exit this backend does not handle. */
        UNHANDLED_EXIT
    }
}
