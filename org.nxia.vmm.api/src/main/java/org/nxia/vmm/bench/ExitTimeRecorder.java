package org.nxia.vmm.bench;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Records the user-space nanoseconds of each exit (hypervisor return to the
 * next entry), for {@code ./nxia bench exits}. A backend's vCPU may offer it;
 * a VM offers it when its first vCPU does. Recording costs two clock reads
 * per exit.
 */
@ConsumerType
public interface ExitTimeRecorder {

    /**
     * From the next entry records each exit's time into {@code sink} from
     * index 0 until it is full; {@code null} turns recording off.
     *
     * @return how many entries the previous sink received
     */
    int recordExitTimes(long[] sink);
}
