package org.nxia.vmm.api;

import org.osgi.annotation.versioning.ProviderType;

/**
 * A micro-VM made once from a snapshot, its template, that serves each
 * {@link #run} from the template's point: the first run starts where the
 * template was saved, and each later one first resets the VM in place,
 * rewriting only the RAM pages written since (the hypervisor's dirty log for
 * the guest's writes, the VMM's own record for its writes) and restoring the
 * vCPU, partition and device state, instead of creating a VM. Runs take turns
 * (one at a time). The VM shows in {@link VmManager#list()} until
 * {@link #close()}.
 */
@ProviderType
public interface Sandbox extends AutoCloseable {

    /** The VM that runs the calls. */
    String vmId();

    /**
     * Resets the VM to the template (not before the first run) and runs it
     * until it stops, stopping it once the template's profile timeout has
     * passed ({@link VmResult.Reason#TIMEOUT}).
     *
     * @param console where the guest's output goes as it prints, or null; the result holds this run's output only
     * @throws IllegalStateException if the sandbox is closed, or the VM did not stop within 5 s of its timeout
     */
    VmResult run(Appendable console) throws InterruptedException;

    /** RAM pages the last reset rewrote; 0 before the second run. */
    long pagesRewritten();

    /** Destroys the VM. Idempotent. */
    @Override
    void close();
}
