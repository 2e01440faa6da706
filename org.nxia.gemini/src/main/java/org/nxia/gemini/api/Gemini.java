package org.nxia.gemini.api;

import java.nio.channels.ByteChannel;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.osgi.annotation.versioning.ProviderType;

/**
 * The Gemini service: sessions with guests and the host services they may
 * call. A host service is any OSGi service registered with the property
 * {@value #SERVICE_PROPERTY}; the methods of the interfaces it is registered
 * under are callable by name (registered under no interface it implements, the
 * public methods its own class declares; never inherited ones, nor Object's).
 */
@ProviderType
public interface Gemini {

    /** Service property: the name guests call the service by. */
    String SERVICE_PROPERTY = "gemini.service";

    /**
     * Service property: the service's catastrophic methods (comma-separated
     * names, or {@code *}); the policy denies them unless a manifest grants them.
     */
    String CATASTROPHIC_PROPERTY = "gemini.catastrophic";

    List<GeminiSession> sessions();

    Optional<GeminiSession> session(long id);

    /** The session of a VM, if it opened one. */
    Optional<GeminiSession> sessionOfVm(String vmId);

    /** Host service names mapped to their callable method names. */
    Map<String, List<String>> services();

    /**
     * Opens a session over {@code transport} whose peer says HELLO; the
     * session applies the policy of {@code profile}.
     */
    GeminiSession open(Transport transport, String profile, String vmId);

    /**
     * Opens a session over a byte stream, the portable path: a virtio-vsock connection
     * ({@code VsockListener.accept} on the VM's device), each frame a u32 little-endian length
     * and its bytes. The peer says HELLO as over rings; the stream must come from the VM
     * {@code vmId}, which binds the session to it. Closing the session closes the stream.
     */
    GeminiSession open(ByteChannel stream, String profile, String vmId);

    /**
     * Opens the session of a System VM's Gemini broker (its agent) over a byte stream framed as in
     * {@link #open(ByteChannel, String, String)}: the broker forwards the calls of the VM's Linux
     * processes, each naming the process it comes from (uid, gid, pid, executable, as the guest
     * kernel reported them), which the policy matches ({@code caller=uid:N}, {@code caller=exe:PATH})
     * and the service sees in {@link CallContext#process()}.
     *
     * @since 1.1
     */
    GeminiSession openBroker(ByteChannel stream, String profile, String vmId);
}
