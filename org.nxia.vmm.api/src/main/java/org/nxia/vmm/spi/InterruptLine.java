package org.nxia.vmm.spi;

import org.osgi.annotation.versioning.ProviderType;

/**
 * One input pin of the VM's interrupt controllers (a GSI: ISA IRQ 0–15 on
 * the PIC and IOAPIC, 16–23 on the IOAPIC only). Safe from any thread; a
 * call allocates nothing, so devices may use it on the vCPU exit path.
 */
@ProviderType
public interface InterruptLine {

    /** The GSI this line drives. */
    int gsi();

    /**
     * Sets the line's level, as a device's interrupt output does: an
     * edge-triggered pin sees the low-to-high change. Repeating the current
     * level costs nothing.
     */
    void set(boolean asserted);

    /**
     * Raises and drops the line once: one edge for an edge-triggered pin
     * (virtio-mmio). Goes through an irqfd where the backend has one; on a
     * line {@link #set} holds high it drops and raises it again. A device
     * uses one of the two styles.
     */
    void pulse();
}
