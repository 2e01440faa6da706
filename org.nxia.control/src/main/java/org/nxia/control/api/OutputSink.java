package org.nxia.control.api;

import org.osgi.annotation.versioning.ConsumerType;

/** Receives a running program's output, chunk by chunk. */
@ConsumerType
@FunctionalInterface
public interface OutputSink {

    /**
     * Called on the session's reader thread; a slow sink delays every other
     * program of the session, and one that throws ends the session.
     * {@code data} is only valid during the call.
     *
     * @param stderr whether the chunk is from stderr (with a pty everything is stdout)
     */
    void output(boolean stderr, byte[] data, int offset, int length);
}
