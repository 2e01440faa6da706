package org.nxia.vmm.spi;

import org.osgi.annotation.versioning.ProviderType;

/**
 * The interrupt controllers a backend emulates for a VM: a local APIC per
 * vCPU, an IOAPIC at {@value #IOAPIC_BASE} with {@value #IOAPIC_PINS} pins,
 * the two 8259 PICs and an 8254 PIT on ports 0x40–0x43. Obtained once per
 * partition from {@link Partition#createInterruptController()}.
 */
@ProviderType
public interface InterruptController {

    /** Where the IOAPIC's registers are, guest-physical. */
    long IOAPIC_BASE = 0xfec0_0000L;
    /** Where each local APIC's registers are, guest-physical. */
    long LOCAL_APIC_BASE = 0xfee0_0000L;
    /** IOAPIC input pins (GSIs 0 to 23). */
    int IOAPIC_PINS = 24;

    /**
     * The line for {@code gsi}.
     *
     * @throws IllegalArgumentException unless {@code gsi} is 0 to {@value #IOAPIC_PINS} - 1
     */
    InterruptLine line(int gsi);

    /** Whether {@link InterruptLine#pulse()} goes through an irqfd (a write) rather than two ioctls. */
    boolean irqfd();

    /**
     * SINT {@code sint} of vCPU {@code vcpu} of a Hyper-V partition ({@link Partition#enableHyperV(SynicHost)}),
     * for the VMM to raise and to hear acknowledged. Call once that vCPU exists; one per vCPU and SINT.
     *
     * @throws IllegalArgumentException if {@code sint} is not 0 to 15, or the vCPU does not exist
     * @throws IllegalStateException if that SINT is taken, or the partition is not a Hyper-V partition
     * @throws UnsupportedOperationException if the backend or the hypervisor cannot route synthetic interrupts
     * @since 1.2
     */
    default SyntheticInterrupt syntheticInterrupt(int vcpu, int sint) {
        throw new UnsupportedOperationException("this backend cannot raise synthetic interrupts");
    }
}
