package org.nxia.vmm.spi;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * The VMM's side of a Hyper-V partition's synthetic interrupt controllers: what the hypervisor
 * leaves to the VMM (KVM: {@code KVM_EXIT_HYPERV}). A VMBus server is one. Called on the vCPU
 * thread of the vCPU that exited, which stays in the VMM until the call returns: keep it short.
 * Every guest address and length it is given is the guest's, unchecked.
 *
 * @since 1.2
 */
@ConsumerType
public interface SynicHost {

    /** Hyper-V hypercall status: done. */
    long HV_STATUS_SUCCESS = 0;
    /** No such hypercall (what a partition without a VMBus server answers). */
    long HV_STATUS_INVALID_HYPERCALL_CODE = 2;
    /** The hypercall's input is malformed (its control word: the fast form, a rep count). */
    long HV_STATUS_INVALID_HYPERCALL_INPUT = 3;
    /** The input page is not 8-byte aligned, or crosses a page. */
    long HV_STATUS_INVALID_ALIGNMENT = 4;
    /** An input parameter is out of range (a payload longer than 240 bytes). */
    long HV_STATUS_INVALID_PARAMETER = 5;
    /** No port or connection of this id. */
    long HV_STATUS_INVALID_CONNECTION_ID = 0x12;
    /** The receiver has no room now; the guest tries again later. */
    long HV_STATUS_INSUFFICIENT_BUFFERS = 0x13;

    /** The hypercall {@code HvPostMessage}. */
    int HVCALL_POST_MESSAGE = 0x5c;
    /** The hypercall {@code HvSignalEvent}. */
    int HVCALL_SIGNAL_EVENT = 0x5d;

    /** A partition with no host: SynIC writes are applied and forgotten, every hypercall is unknown. */
    SynicHost NONE = new SynicHost() {
        @Override
        public void synicChanged(int vcpu, long control, long eventPage, long messagePage) {
        }

        @Override
        public long hypercall(int vcpu, long control, long input, long output) {
            return HV_STATUS_INVALID_HYPERCALL_CODE;
        }
    };

    /**
     * The guest wrote {@code vcpu}'s SynIC control, event-flags page or message page MSR (the
     * hypervisor has applied it). The values are the MSRs' as the guest wrote them: bit 0 enables,
     * the page's guest-physical address is the value with its low 12 bits clear.
     */
    void synicChanged(int vcpu, long control, long eventPage, long messagePage);

    /**
     * A hypercall the hypervisor leaves to the VMM ({@link #HVCALL_POST_MESSAGE},
     * {@link #HVCALL_SIGNAL_EVENT}).
     *
     * @param control the hypercall's control word: its code in bits 0 to 15, bit 16 the fast form
     * @param input   the input page's guest-physical address, or for the fast form the first input register
     * @param output  the output page's guest-physical address, or for the fast form the second input register
     * @return the Hyper-V status the guest sees, such as {@link #HV_STATUS_SUCCESS}
     */
    long hypercall(int vcpu, long control, long input, long output);
}
