package org.nxia.device.virtio.vsock;

import java.time.Duration;

import org.osgi.annotation.versioning.ProviderType;

/** Guest connections to one host port, accepted from the host side. */
@ProviderType
public interface VsockListener extends AutoCloseable {

    /** The host port listened on. */
    int port();

    /** The next connection the guest opened, or {@code null} when none came within {@code timeout}. */
    VsockStream accept(Duration timeout) throws InterruptedException;

    /** Stops listening; later guest connections to the port are refused. Accepted streams stay open. */
    @Override
    void close();
}
