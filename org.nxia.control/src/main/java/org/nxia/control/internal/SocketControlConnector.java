package org.nxia.control.internal;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;

import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlConnector;
import org.osgi.service.component.annotations.Component;

/** The connector as a service; also usable without DS ({@code new SocketControlConnector()}). */
@Component(service = ControlConnector.class)
public final class SocketControlConnector implements ControlConnector {

    @Override
    public AgentSession connect(SocketChannel channel, byte[] secret) throws IOException {
        return AgentConnection.open(channel, secret, AgentConnection.HANDSHAKE_LIMIT);
    }

    @Override
    public AgentSession connect(Path unixSocket, byte[] secret) throws IOException {
        return connect(SocketChannel.open(UnixDomainSocketAddress.of(unixSocket)), secret);
    }
}
