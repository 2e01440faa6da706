package org.nxia.vmm.spi;

import java.util.Objects;

/**
 * What a backend is on this host.
 *
 * @param backend         short name, e.g. {@code kvm}
 * @param flavour         the kind of virtualization underneath
 * @param available       whether VMs can be created
 * @param detail          one line: version, how the flavour was detected, or why it is unavailable
 * @param nativeModeMsr   the MSR a guest writes with its control block's address to run natively on a
 *                        paravirtual host (PVM: its control MSR); 0 where there is none
 */
public record HypervisorInfo(String backend, Flavour flavour, boolean available, String detail, int nativeModeMsr) {

    public HypervisorInfo {
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(flavour, "flavour");
        Objects.requireNonNull(detail, "detail");
    }

    /** The virtualization a backend runs on. */
    public enum Flavour {
        /** Intel VMX: any guest, including stock Linux. */
        HARDWARE_VMX("hardware (VMX)", true),
        /** AMD SVM: any guest, including stock Linux. */
        HARDWARE_SVM("hardware (SVM)", true),
        /** Pagetable-based VM: PVM-aware guests run natively at CPL 3, anything else is emulated. */
        PVM("PVM (kvm_pvm)", false),
        /** The backend could not tell, or is unavailable. */
        UNKNOWN("unknown", false);

        private final String label;
        private final boolean hardware;

        Flavour(String label, boolean hardware) {
            this.label = label;
            this.hardware = hardware;
        }

        /** Words for people. */
        public String label() {
            return label;
        }

        /** Whether a stock kernel (the System VM) can boot on it. */
        public boolean hardwareVirtualization() {
            return hardware;
        }
    }
}
