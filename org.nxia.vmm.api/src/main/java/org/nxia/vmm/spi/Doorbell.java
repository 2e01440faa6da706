package org.nxia.vmm.spi;

import java.util.Optional;

import org.osgi.annotation.versioning.ProviderType;

/**
 * A guest-physical MMIO address whose writes the hypervisor counts instead
 * of exiting to the VMM (KVM: ioeventfd): the vCPU goes on at once and a
 * host thread takes the writes with {@link #await()}. For a device whose
 * notifications need not be served on the vCPU thread (a virtqueue notify
 * register). Obtained from {@link Partition#createDoorbell}.
 */
@ProviderType
public interface Doorbell extends AutoCloseable {

    /** The guest-physical address. */
    long address();

    /** The write size it matches, in bytes. */
    int length();

    /**
     * Blocks until the guest has written at least once since the last call,
     * then returns how many times; returns 0 once closed. For one waiting
     * thread.
     */
    long await();

    /**
     * Connects this doorbell to {@code line}, an interrupt line of another VM
     * of the same backend: each guest write then raises that line inside the
     * hypervisor, with no host thread in between (KVM: the ioeventfd's
     * eventfd is also the other VM's irqfd). While connected, {@link #await()}
     * sees no writes. Closing the result disconnects; closing either VM does too.
     *
     * @return empty where the backend cannot join them (no irqfd, or a line
     *         of another backend); the caller then forwards the writes itself
     * @throws IllegalStateException if this doorbell is closed or already connected
     */
    default Optional<AutoCloseable> connect(InterruptLine line) {
        return Optional.empty();
    }

    /**
     * Stops counting (writes exit to the VMM again), wakes a waiting thread
     * and releases the kernel objects once no thread waits. Idempotent.
     */
    @Override
    void close();
}
