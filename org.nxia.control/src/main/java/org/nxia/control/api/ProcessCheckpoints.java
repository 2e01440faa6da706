package org.nxia.control.api;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;

import org.osgi.annotation.versioning.ProviderType;

/**
 * Checkpoints of processes in a System VM by CRIU (the guest's {@code criu}, Debian's package in
 * the System VM's root file system), kept on the host: a checkpoint is one file, a gzip'd tar of
 * CRIU's images. A restored process tree gets its standard input, output and error from a new
 * program of the session where the checkpointed one had pipes (its other open files must exist in
 * the guest that restores it).
 */
@ProviderType
public interface ProcessCheckpoints {

    /** The largest checkpoint file taken or restored. */
    long MAX_CHECKPOINT = 1L << 30;

    /**
     * Checkpoints the process tree rooted at {@code pid} into {@code file}, which is written only
     * when the checkpoint is whole (a failed one leaves an existing file as it was).
     *
     * @param leaveRunning whether the tree goes on running afterwards; else CRIU ends it
     * @param limit        how long the checkpoint may take
     * @throws ControlException {@link ControlException.Code#SYSTEM} if CRIU failed (the message has
     *         the end of its log)
     * @throws IOException past the limit (the checkpoint is abandoned), or the checkpoint is larger
     *         than {@link #MAX_CHECKPOINT}
     */
    ProcessCheckpoint checkpoint(AgentSession session, int pid, Path file, boolean leaveRunning, Duration limit)
            throws IOException, InterruptedException;

    /**
     * Restores the process tree of {@code file} in the session's guest, with the pids it had. Its
     * output goes to {@code sink} as a program's; the returned execution ends when the restored
     * tree's root ends, with its status (or CRIU's, with the end of its log on stderr, if the
     * restore failed).
     */
    Execution restore(AgentSession session, Path file, OutputSink sink) throws IOException, InterruptedException;

    /**
     * A checkpoint taken.
     *
     * @param file  where it is
     * @param bytes its size
     * @param pid   the tree's root
     * @param took  from the request to the file in place
     */
    record ProcessCheckpoint(Path file, long bytes, int pid, Duration took) {
    }
}
