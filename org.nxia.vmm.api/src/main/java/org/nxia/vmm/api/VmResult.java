package org.nxia.vmm.api;

import java.time.Duration;
import java.util.Objects;

/**
 * How a VM ended.
 *
 * @param reason     the class of ending
 * @param exitStatus the guest's exit status, or -1 when it did not exit by itself
 * @param detail     one line saying what happened and, for errors, what to do
 * @param output     the bytes the guest returned as output
 * @param runTime    from start to stop
 */
public record VmResult(Reason reason, int exitStatus, String detail, byte[] output, Duration runTime) {

    public VmResult {
        Objects.requireNonNull(reason, "reason");
        Objects.requireNonNull(detail, "detail");
        Objects.requireNonNull(runTime, "runTime");
        output = output == null ? new byte[0] : output.clone();
    }

    @Override
    public byte[] output() {
        return output.clone();
    }

    /** Whether the guest exited by itself with status 0. */
    public boolean succeeded() {
        return reason == Reason.EXITED && exitStatus == 0;
    }

    public enum Reason {
        /** The guest wrote its exit status. */
        EXITED,
        /** The guest halted. */
        HALTED,
        /**
         * The guest powered off (a Linux VM with ACPI: the S5 sleep type written to the FADT's sleep
         * control register, as {@code poweroff} does).
         *
         * @since 3.6
         */
        POWERED_OFF,
        /** The guest asked for a reset (i8042); micro-VMs do not reboot, so it stopped. */
        RESET,
        /** Stopped from the host (vm:stop). */
        STOPPED,
        /** It ran past its timeout and was stopped. */
        TIMEOUT,
        /** The guest triple-faulted or took an exception it could not handle. */
        TRIPLE_FAULT,
        /** The guest did something the VMM refuses: a port or MMIO address nobody serves, a bad host call. */
        GUEST_ERROR,
        /** The hypervisor failed to run the guest (entry failure, internal error). */
        HYPERVISOR_ERROR
    }
}
