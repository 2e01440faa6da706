package org.nxia.vmm.spi;

import java.util.List;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * A backend's hold on which host CPUs a thread runs on ({@link Hypervisor#hostAffinity()}); the VMM
 * pins each vCPU thread with it while that vCPU runs.
 */
@ConsumerType
public interface HostAffinity {

    /** The host CPUs this process may run on, ascending. */
    List<Integer> allowedCpus();

    /** The host CPUs the calling thread may run on now, ascending (read back from the host). */
    List<Integer> threadCpus();

    /**
     * Lets the calling thread run only on {@code cpus}.
     *
     * @throws HypervisorException if the host refuses, naming the call and the CPUs
     */
    void pinThread(List<Integer> cpus);
}
