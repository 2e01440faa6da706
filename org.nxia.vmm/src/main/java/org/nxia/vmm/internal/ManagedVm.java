package org.nxia.vmm.internal;

import java.time.Duration;
import java.util.List;

import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmResult;

/** What the manager needs of each kind of VM (micro-VM, Linux VM). */
interface ManagedVm extends VirtualMachine {

    void consoleSink(Appendable sink);

    /** Records why the VM should stop (first cause wins) and kicks its vCPUs. */
    void stopWith(VmResult.Reason reason, String detail);

    /** How long {@code VmManager.run} waits. */
    Duration timeout();

    /** The names of the Portal regions mapped into the VM now. */
    List<String> portalNames();

    /** Stops the VM if needed and releases everything. */
    void destroy();
}
