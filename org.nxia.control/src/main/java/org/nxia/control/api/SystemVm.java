package org.nxia.control.api;

import java.time.Duration;

import org.nxia.vmm.api.VirtualMachine;
import org.osgi.annotation.versioning.ProviderType;

/** A running System VM with its agent session. Closing it shuts the guest down and destroys the VM. */
@ProviderType
public interface SystemVm extends AutoCloseable {

    /** The VM. */
    VirtualMachine vm();

    /** The authenticated session with its agent (also registered as a service). */
    AgentSession session();

    /** From start to the agent's ready line. */
    Duration readyAfter();

    /**
     * Asks the agent to shut down (it syncs the guest's file systems), then
     * stops and destroys the VM and unregisters the session. Idempotent.
     */
    @Override
    void close();
}
