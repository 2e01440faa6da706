package org.nxia.vmm.api.device;

import org.osgi.annotation.versioning.ProviderType;

/** A device the host can type into (a UART): what it sends, the guest reads. */
@ProviderType
public interface SerialPort {

    /** Queues {@code bytes} for the guest to read; bytes beyond the device's buffer are kept until read. */
    void send(byte[] bytes);
}
