package org.nxia.vmm.spi;

import org.osgi.annotation.versioning.ProviderType;

/**
 * One synthetic interrupt source (SINT) of one vCPU of a Hyper-V partition: the VMM puts a message
 * in that vCPU's message page, in the SINT's slot, and raises the SINT; the guest takes the vector
 * it programmed, reads the slot and frees it, and when the VMM flagged a message as pending it
 * writes the end-of-message MSR, which {@link #awaitAck()} sees. Obtained from
 * {@link InterruptController#syntheticInterrupt}.
 *
 * @since 1.2
 */
@ProviderType
public interface SyntheticInterrupt extends AutoCloseable {

    /** The vCPU (its Hyper-V VP index). */
    int vcpu();

    /** The SINT, 0 to 15. */
    int sint();

    /** Raises it. A SINT the guest has masked, or a SynIC it has not enabled, takes nothing. */
    void signal();

    /**
     * Blocks until the guest has acknowledged a message of this SINT (end of message, or the EOI of
     * its vector) at least once since the last call, then returns how many times; returns 0 once
     * closed. For one waiting thread.
     */
    long awaitAck();

    /** Disconnects it and wakes a waiting thread. Idempotent. */
    @Override
    void close();
}
