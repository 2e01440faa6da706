package org.nxia.control.api;

import java.io.IOException;

import org.osgi.annotation.versioning.ProviderType;

/**
 * An authenticated connection to one guest agent. Thread-safe: programs run
 * concurrently over one session. Closing it ends the programs it started.
 */
@ProviderType
public interface AgentSession extends AutoCloseable {

    /** The agent's own description, e.g. {@code nxia-agent 0.1}. */
    String agent();

    /** Whether the agent runs as the guest's init (PID 1) rather than as a process. */
    boolean agentIsInit();

    /**
     * Starts a program; its output goes to {@code sink} (on the session's
     * reader thread, in order) until {@link Execution#exit()} completes.
     *
     * @throws ControlException the program could not be started (code
     *         {@link ControlException.Code#EXEC} for a missing program or cwd)
     */
    Execution start(ExecRequest request, OutputSink sink) throws IOException;

    /**
     * Runs a program to its end with stdin closed, collecting its output (at
     * most {@link ExecResult#OUTPUT_LIMIT} bytes per stream).
     */
    ExecResult exec(ExecRequest request) throws IOException;

    /** {@code exec(ExecRequest.of(argv))}. */
    default ExecResult exec(String... argv) throws IOException {
        return exec(ExecRequest.of(argv));
    }

    /** Sets the hostname, environment for later programs and mounts. */
    void configure(GuestConfig config) throws IOException;

    /** Stops accepting new work and syncs the guest's file systems; returns when done. */
    void quiesce() throws IOException;

    /** Accepts new work again after {@link #quiesce()}. */
    void resume() throws IOException;

    /**
     * Accepts new work again as {@code generation}: the guest's entropy is reseeded from its seed
     * and later connections must prove its secret (this session stays open). For a guest restored
     * from a snapshot, so that clones share neither secret nor random state.
     *
     * @throws ControlException {@link ControlException.Code#PROTOCOL} if the guest has already seen
     *         this generation or a later one
     */
    void resume(Generation generation) throws IOException;

    /**
     * Asks the agent to end: as PID 1 it powers the guest off, as a process it
     * exits. The session is closed afterwards.
     */
    void shutdown() throws IOException;

    @Override
    void close();
}
