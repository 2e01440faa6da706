package org.nxia.vmm.internal.image;

import java.io.Serial;

/** A guest image that cannot be loaded; the message names the problem and what to do. */
public final class GuestImageException extends IllegalArgumentException {
    @Serial
    private static final long serialVersionUID = 1L;

    public GuestImageException(String message) {
        super(message);
    }
}
