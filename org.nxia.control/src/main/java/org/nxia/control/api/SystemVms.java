package org.nxia.control.api;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.spi.RamFile;
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
    /**
     * Service property of a registered {@link AgentSession}: the host end of the VM's vsock
     * device, a Unix socket path; a guest connection to host port P reaches {@code <path>_P}
     * (docs/vsock.md). The Gemini bundle serves the VM's broker on port 1025 there.
     *
     * @since 1.4
     */
    String VSOCK_UDS = "nxia.vsock.uds";
    /**
     * Service property of a registered {@link AgentSession}: the capability manifest that governs
     * the calls of the VM's processes ({@code LinuxProfile.manifest()}: a configured profile's
     * {@code manifest}, else the VM's name).
     *
     * @since 1.4
     */
    String PROFILE = "nxia.profile";
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

    /**
     * Saves a running System VM: its agent quiesces (syncs the guest's file systems and takes no
     * new work; running programs go on), the VM pauses and is saved, then both go on. Programs
     * started through a session of the saved moment do not survive into a restored copy (their
     * connection is reset there).
     *
     * @throws IllegalArgumentException no System VM of that id runs here
     * @throws IllegalStateException the VM cannot be saved (a device cannot, or Portals are mapped), saying why; it runs on
     */
    SystemVmSnapshot snapshot(String vmId) throws IOException;

    /**
     * Starts a new System VM from {@code snapshot}: its RAM, vCPUs and devices as saved, a vsock
     * socket of its own, then a session with the saved secret, and at once a new generation (a
     * new secret and reseeded entropy, {@link AgentSession#resume(Generation)}), so that no two
     * copies share either. Each restore of one snapshot is a clone of its own.
     *
     * @param readyLimit how long it may take until the new generation's session is open
     */
    SystemVm restore(SystemVmSnapshot snapshot, Duration readyLimit) throws IOException, InterruptedException;

    /**
     * As {@link #restore}, with the guest's RAM mapped copy-on-write from {@code ram}
     * ({@code VmManager.clone}) instead of copied: clones of one RAM file share its pages until
     * each writes them. {@code snapshot} holds no RAM of its own. Each clone moves to a new
     * generation of its own at once, as a restore does.
     *
     * @throws IllegalArgumentException the snapshot holds RAM, or {@code ram} does not fit it (no VM is left)
     * @since 1.6
     */
    SystemVm clone(SystemVmSnapshot snapshot, RamFile ram, Duration readyLimit) throws IOException, InterruptedException;

    /** The System VMs booted here that are still running. */
    List<SystemVm> list();

    /** One of {@link #list()} by VM id. */
    Optional<SystemVm> find(String vmId);
}
