package org.nxia.device.virtio.internal.net;

import org.nxia.device.virtio.internal.mmio.VirtioMmioTransport;

/** The host end of a virtio-net device: passt (the default) or a TAP interface. */
interface NetBackend extends AutoCloseable {

    /** Starts moving frames; the device's transport is {@code transport}. */
    void start(VirtioMmioTransport transport);

    /** The backend's part of the device state. */
    Record state();

    /** Stops, and releases what it holds (a process, an fd, a directory). */
    @Override
    void close();
}
