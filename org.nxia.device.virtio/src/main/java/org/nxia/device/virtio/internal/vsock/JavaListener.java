package org.nxia.device.virtio.internal.vsock;

import java.time.Duration;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.nxia.device.virtio.vsock.VsockListener;
import org.nxia.device.virtio.vsock.VsockStream;

/** Guest connections to one host port, queued for the Java API: at most {@link #BACKLOG}, further requests are refused. */
final class JavaListener implements VsockListener {

    static final int BACKLOG = 16;

    private final VirtioVsock device;
    private final int port;
    final LinkedBlockingQueue<VsockStream> accepted = new LinkedBlockingQueue<>(BACKLOG);

    JavaListener(VirtioVsock device, int port) {
        this.device = device;
        this.port = port;
    }

    @Override
    public int port() {
        return port;
    }

    @Override
    public VsockStream accept(Duration timeout) throws InterruptedException {
        return accepted.poll(timeout.toNanos(), TimeUnit.NANOSECONDS);
    }

    @Override
    public void close() {
        device.unlisten(this);
    }
}
