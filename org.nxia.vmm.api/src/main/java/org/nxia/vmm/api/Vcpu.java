package org.nxia.vmm.api;

import java.util.Map;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * One virtual CPU. {@link #run} is called on the vCPU's own platform thread;
 * {@link #requestStop} may be called from any thread.
 */
@ConsumerType
public interface Vcpu extends AutoCloseable {

    int id();

    Registers registers();

    void setRegisters(Registers registers);

    SpecialRegisters specialRegisters();

    /** Sets every special register; pending external interrupts are cleared. */
    void setSpecialRegisters(SpecialRegisters registers);

    /** Reads a model-specific register. @throws HypervisorException if the MSR is not readable */
    long readMsr(int index);

    /** Writes a model-specific register. @throws HypervisorException if refused */
    void writeMsr(int index, long value);

    /**
     * Runs the guest until it stops, dispatching port and MMIO exits to
     * {@code handler} on this thread. The loop allocates nothing per exit.
     *
     * @return why it stopped
     */
    VcpuStop run(ExitHandler handler);

    /**
     * Asks the vCPU to leave {@link #run} as soon as possible, with
     * {@link VcpuStop.Kind#REQUESTED}. Safe from any thread, including from the
     * exit handler; interrupts a guest that is running without exits.
     */
    void requestStop();

    /** Backend counters for this vCPU (e.g. {@code exits}, {@code insn_emulation}); empty if none. */
    Map<String, Long> statistics();

    @Override
    void close();
}
