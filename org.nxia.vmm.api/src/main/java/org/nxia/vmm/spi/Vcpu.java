package org.nxia.vmm.spi;

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

    /**
     * Lets the next {@link #run} enter the guest again after a requested stop,
     * for a paused VM that resumes. Call on the vCPU's own thread between two
     * runs; a stop requested after this call still ends the next run.
     *
     * @throws UnsupportedOperationException if this backend cannot run a vCPU again once stopped
     */
    default void clearStopRequest() {
        throw new UnsupportedOperationException("this backend cannot resume a vCPU after a requested stop");
    }

    /**
     * The vCPU's full state, consistent: an I/O the guest was doing when it
     * stopped is complete. Call only while no thread is in {@link #run}.
     *
     * @throws UnsupportedOperationException if this backend cannot save vCPU state
     * @throws HypervisorException if the hypervisor refuses to give a part, naming the part
     */
    default VcpuState saveState() {
        throw new UnsupportedOperationException("this backend cannot save vCPU state");
    }

    /**
     * Puts {@code state} into this vCPU before it runs. The state may come from
     * a file: every part is checked first and a part of the wrong size or one
     * this backend does not know is refused, naming it, before anything is set.
     *
     * @throws IllegalArgumentException for a malformed state
     * @throws UnsupportedOperationException if this backend cannot restore vCPU state
     * @throws HypervisorException if the hypervisor refuses a part, naming it
     */
    default void restoreState(VcpuState state) {
        throw new UnsupportedOperationException("this backend cannot restore vCPU state");
    }

    /** Backend counters for this vCPU (e.g. {@code exits}, {@code insn_emulation}); empty if none. */
    Map<String, Long> statistics();

    @Override
    void close();
}
