package org.nxia.control.api;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;

import org.osgi.annotation.versioning.ProviderType;

/** Opens authenticated sessions with guest agents. */
@ProviderType
public interface ControlConnector {

    /**
     * Authenticates over {@code channel} (connected, blocking) with the VM's
     * secret; the session owns the channel from then on, and closes it when
     * the handshake fails.
     *
     * @throws ControlException the agent refused us, failed to prove it knows
     *         the secret, or spoke something else
     */
    AgentSession connect(SocketChannel channel, byte[] secret) throws IOException;

    /** Connects to an agent listening on a Unix socket ({@code nxia-agent --unix PATH}). */
    AgentSession connect(Path unixSocket, byte[] secret) throws IOException;
}
