package org.nxia.device.virtio.vsock;

import java.io.IOException;
import java.time.Duration;

import org.osgi.annotation.versioning.ProviderType;

/**
 * The host end of one VM's virtio-vsock device (the host is CID 2). Streams
 * opened here bypass the device's Unix sockets; they share its connection
 * limit and flow control.
 */
@ProviderType
public interface VsockEndpoint {

    /** The guest's context id ({@code cid=} of the device). */
    long guestCid();

    /**
     * Opens a stream to {@code guestPort} of the guest and waits until the
     * guest accepts it.
     *
     * @throws java.net.ConnectException when the guest refuses (RST), or does not answer within {@code timeout}
     * @throws IOException when the device has no room for another connection
     */
    VsockStream connect(int guestPort, Duration timeout) throws IOException;

    /**
     * Takes the guest's connections to host port {@code hostPort} (instead of
     * the Unix socket {@code <uds>_<hostPort>}) until the listener is closed.
     *
     * @throws IllegalStateException when someone already listens on that port
     */
    VsockListener listen(int hostPort);
}
