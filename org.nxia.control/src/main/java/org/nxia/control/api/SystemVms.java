package org.nxia.control.api;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

import org.nxia.vmm.api.LinuxProfile;
import org.osgi.annotation.versioning.ProviderType;

/**
 * Boots System VMs (a Linux image whose init is the control agent) and keeps
 * their agent sessions. Each ready System VM's session is also registered as
 * an {@link AgentSession} service with the property {@link #VM_ID}, and
 * unregistered when the VM ends or is closed: other bundles find the guest
 * they want to run programs in through the service registry.
 */
@ProviderType
public interface SystemVms {

    /** Service property of a registered {@link AgentSession}: the id of the VM its agent runs in. */
    String VM_ID = "nxia.vm.id";
    /** Service property of a registered {@link AgentSession}: the agent's own description. */
    String AGENT = "nxia.agent";
    /** The vsock port the agent listens on. */
    int AGENT_PORT = 1024;

    /**
     * Boots {@code profile} with a fresh per-VM secret in a file appended to its
     * initramfs (never on the command line, which the console prints) and a
     * virtio-vsock device added, waits for the agent's ready line, and opens an
     * authenticated session over vsock; the handshake has 30 s.
     *
     * @param readyLimit how long boot may take up to the ready line
     * @throws IllegalArgumentException the host cannot boot a stock kernel (no hardware virtualization)
     * @throws IOException the VM ended or timed out before its agent was ready (the message carries
     *         the console's tail), or the session failed or its handshake ran out of time; the VM is
     *         stopped and destroyed then
     */
    SystemVm boot(LinuxProfile profile, Duration readyLimit) throws IOException, InterruptedException;

    /** The System VMs booted here that are still running. */
    List<SystemVm> list();

    /** One of {@link #list()} by VM id. */
    Optional<SystemVm> find(String vmId);
}
