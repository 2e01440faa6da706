package org.nxia.portal.api;

import java.io.Serial;

/**
 * A Portal operation was refused: an invalid or stale reference, a full arena,
 * an oversize message, or a corrupt structure in shared memory. The message says
 * what was wrong.
 */
public class PortalException extends RuntimeException {
    @Serial
    private static final long serialVersionUID = 1L;

    public PortalException(String message) {
        super(message);
    }

    public PortalException(String message, Throwable cause) {
        super(message, cause);
    }
}
