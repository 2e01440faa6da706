package org.nxia.device.virtio.vsock;

import java.io.IOException;
import java.nio.channels.ByteChannel;

import org.osgi.annotation.versioning.ProviderType;

/**
 * One vsock stream connection seen from the host: blocking reads return what
 * the guest sent (-1 after the guest shut down its sending side), writes
 * block while the guest's receive credit is used up.
 */
@ProviderType
public interface VsockStream extends ByteChannel {

    /** The host-side port. */
    int hostPort();

    /** The guest-side port. */
    int guestPort();

    /** Tells the guest the host will send nothing more (SHUTDOWN with the SEND flag); reading goes on. */
    void shutdownOutput() throws IOException;
}
