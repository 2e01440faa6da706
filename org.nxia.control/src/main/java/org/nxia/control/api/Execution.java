package org.nxia.control.api;

import java.io.IOException;
import java.util.concurrent.CompletableFuture;

import org.osgi.annotation.versioning.ProviderType;

/** A program running in the guest. */
@ProviderType
public interface Execution {

    /** Its process id in the guest. */
    int pid();

    /** Queues bytes for its stdin. */
    void write(byte[] data) throws IOException;

    /** Ends its stdin (with a pty: sends the terminal's end-of-input, ^D). */
    void closeStdin() throws IOException;

    /** Sends a signal to its process group. */
    void signal(int signal) throws IOException;

    /** Changes its terminal's size (pty only). */
    void resize(int rows, int cols) throws IOException;

    /**
     * Completes after all its output has reached the sink; completes
     * exceptionally with a {@link ControlException} if the session ends first.
     */
    CompletableFuture<ExitStatus> exit();
}
