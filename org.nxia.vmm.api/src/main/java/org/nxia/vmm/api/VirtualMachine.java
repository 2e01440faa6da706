package org.nxia.vmm.api;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeoutException;

import org.nxia.vmm.api.device.Device;
import org.osgi.annotation.versioning.ProviderType;
import org.nxia.vmm.spi.PlacementOutcome;

/** One VM managed by the platform. */
@ProviderType
public interface VirtualMachine {

    String id();

    /** What the VM was created from. */
    VmSpec spec();

    VmState state();

    /** Starts the vCPU thread. @throws IllegalStateException unless {@link VmState#CREATED} */
    void start();

    /** Stops a running VM (its result says {@link VmResult.Reason#STOPPED}); no-op once stopped. */
    void stop();

    /**
     * Asks the guest to power itself off through the first device that can ask it
     * ({@link org.nxia.vmm.api.device.GracefulShutdown}: a Hyper-V guest's shutdown channel), and
     * returns at once; the VM ends when the guest powers off. {@link #stop()} stops it without asking.
     *
     * @return false if no device can ask the guest now (none, or its driver has not opened it)
     * @since 3.9
     */
    boolean requestShutdown();

    /**
     * Pauses a running VM: every vCPU leaves the guest and waits, device
     * notifications are held. {@link #stop()} and destroy still work while paused.
     *
     * @throws IllegalStateException unless {@link VmState#RUNNING}
     * @throws UnsupportedOperationException if this VM cannot pause
     */
    default void pause() {
        throw new UnsupportedOperationException(id() + " cannot pause");
    }

    /**
     * Resumes a paused VM on the same vCPU threads, where it paused.
     *
     * @throws IllegalStateException unless {@link VmState#PAUSED}
     * @throws UnsupportedOperationException if this VM cannot pause
     */
    default void resume() {
        throw new UnsupportedOperationException(id() + " cannot pause or resume");
    }

    /**
     * Saves a paused VM whole (see {@link VmSnapshot}); the VM stays paused.
     *
     * @throws IllegalStateException unless {@link VmState#PAUSED}, or if a device cannot be saved (naming it)
     *         or the VM has Portal regions mapped
     * @throws UnsupportedOperationException if this VM or its backend cannot be saved
     */
    default VmSnapshot snapshot() {
        throw new UnsupportedOperationException(id() + " cannot be saved");
    }

    /**
     * Begins reading this VM's RAM while it runs ({@link LiveRam}): pre-copy migration.
     *
     * @throws IllegalStateException unless {@link VmState#RUNNING} or {@link VmState#PAUSED}, if one is open already,
     *         or if the VM's writes are logged for a sandbox's reset
     * @throws UnsupportedOperationException if the backend keeps no dirty log, or the VM has devices (their views of
     *         guest RAM predate the VMM's record of its writes: such a VM moves stop-and-copy)
     * @since 3.7
     */
    default LiveRam liveRam() {
        throw new UnsupportedOperationException(id() + "'s RAM cannot be read while it runs");
    }

    /**
     * Waits until the VM stops.
     *
     * @throws TimeoutException if it is still running after {@code timeout}
     */
    VmResult await(Duration timeout) throws InterruptedException, TimeoutException;

    /** The result once stopped. */
    Optional<VmResult> result();

    /** Everything the guest printed so far (bounded; the oldest output is dropped past 1 MiB). */
    String console();

    VmInfo info();

    /**
     * What became of the {@link VmSpec#placement()} asked for: one outcome per part asked for
     * (vCPU pinning, huge pages, overcommit), empty if the spec asked for none.
     */
    default List<PlacementOutcome> placement() {
        return List.of();
    }

    /** The VM's devices, in profile order. */
    List<Device> devices();
}
