package org.nxia.snapshot.api;

/**
 * A snapshot file that breaks its format, or fails its hashes or its authentication: the
 * message says what is wrong and where (section, file offset). Nothing of such a file is
 * handed out.
 */
public final class SnapshotFormatException extends Exception {

    private static final long serialVersionUID = 1L;

    public SnapshotFormatException(String message) {
        super(message);
    }

    public SnapshotFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
