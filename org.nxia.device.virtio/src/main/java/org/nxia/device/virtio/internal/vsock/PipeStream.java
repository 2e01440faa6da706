package org.nxia.device.virtio.internal.vsock;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Pipe;

import org.nxia.device.virtio.vsock.VsockStream;

/** The Java API's end of a connection: blocking pipe ends whose other ends the device's I/O thread serves. */
final class PipeStream implements VsockStream {

    private final Pipe.SinkChannel toGuest;
    private final Pipe.SourceChannel fromGuest;
    private volatile int hostPort;
    private volatile int guestPort;

    PipeStream(Pipe.SinkChannel toGuest, Pipe.SourceChannel fromGuest) {
        this.toGuest = toGuest;
        this.fromGuest = fromGuest;
    }

    void ports(int host, int guest) {
        hostPort = host;
        guestPort = guest;
    }

    @Override
    public int hostPort() {
        return hostPort;
    }

    @Override
    public int guestPort() {
        return guestPort;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        return fromGuest.read(dst);
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        int n = 0;
        while (src.hasRemaining()) {
            n += toGuest.write(src);
        }
        return n;
    }

    @Override
    public void shutdownOutput() throws IOException {
        toGuest.close();
    }

    @Override
    public boolean isOpen() {
        return toGuest.isOpen() || fromGuest.isOpen();
    }

    @Override
    public void close() throws IOException {
        toGuest.close();
        fromGuest.close();
    }

    @Override
    public String toString() {
        return "vsock stream host:" + Integer.toUnsignedString(hostPort) + " <-> guest:" + Integer.toUnsignedString(guestPort);
    }
}
